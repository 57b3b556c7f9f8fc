//! The app database as a person looks at it (read-only): schemas and tables with their row
//! counts and sizes, and a table's rows page by page, every value as text. A large table is
//! never counted in full: its count is the planner's estimate, said as "about".

use serde::Serialize;
use tokio_postgres::SimpleQueryMessage;

use crate::pg::{PgTarget, pg_error, quote_ident};
use crate::services::Store;
use crate::services::browse::{BrowseError, PAGE_SIZE, VALUE_CHARS, clip};

/// Rows counted exactly at most; a table with more shows the planner's estimate.
pub const EXACT_COUNT: i64 = 10_000;

/// Pages deeper than this are refused (OFFSET reads every row before the page).
const MAX_OFFSET: u64 = 10_000_000;

/// A table's row count as the page says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "n", rename_all = "snake_case")]
pub enum RowCount {
    Exact(i64),
    /// The planner's estimate (`pg_class.reltuples`).
    About(i64),
    /// Never analysed and above [`EXACT_COUNT`].
    MoreThan(i64),
}

impl std::fmt::Display for RowCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowCount::Exact(n) => write!(f, "{n}"),
            RowCount::About(n) => write!(f, "about {n}"),
            RowCount::MoreThan(n) => write!(f, "more than {n}"),
        }
    }
}

/// One table (or partitioned table, or materialized view) of the database.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub rows: String,
    pub bytes: i64,
    pub size: String,
}

/// A column of a table.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    pub data_type: String,
}

/// One value: `None` is SQL NULL (shown apart from the empty string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub text: Option<String>,
    pub clipped: bool,
}

/// One page of a table.
#[derive(Debug, Clone, Serialize)]
pub struct Rows {
    pub schema: String,
    pub table: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    pub count: String,
    /// Rows before this page.
    pub offset: u64,
    pub next: Option<u64>,
    pub previous: Option<u64>,
    /// What the rows are ordered by (the primary key), if anything.
    pub order: Vec<String>,
}

/// The app database as the app user reaches it.
pub struct Target {
    service: String,
    pg: PgTarget,
}

impl Target {
    /// `None` for a service without Postgres settings.
    pub fn of(store: &Store<'_>) -> Option<Target> {
        Some(Target {
            service: store.service.to_string(),
            pg: store.postgres()?,
        })
    }

    pub fn database(&self) -> &str {
        &self.pg.app.database
    }

    async fn connect(&self) -> Result<tokio_postgres::Client, BrowseError> {
        self.pg
            .connect_app(&self.pg.app.database)
            .await
            .map_err(|e| self.query_error(&e))
    }

    fn query_error(&self, e: &tokio_postgres::Error) -> BrowseError {
        BrowseError::api(&self.service, pg_error(e))
    }

    /// Every table outside the system schemas, by schema and name.
    pub async fn tables(&self) -> Result<Vec<Table>, BrowseError> {
        let client = self.connect().await?;
        let rows = client
            .query(
                "SELECT n.nspname::text, c.relname::text, c.reltuples::bigint, \
                        pg_total_relation_size(c.oid) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'm') \
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
                 ORDER BY 1, 2",
                &[],
            )
            .await
            .map_err(|e| self.query_error(&e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let (schema, name): (String, String) = (r.get(0), r.get(1));
            let estimate: i64 = r.get(2);
            let bytes: i64 = r.get(3);
            let count = count(&client, &schema, &name, estimate)
                .await
                .map_or_else(|e| format!("unknown ({})", pg_error(&e)), |c| c.to_string());
            out.push(Table {
                rows: count,
                size: crate::text::size(bytes.max(0) as u64),
                bytes,
                schema,
                name,
            });
        }
        Ok(out)
    }

    /// One page of a table's rows, from `offset`, ordered by its primary key when it has one.
    pub async fn rows(&self, schema: &str, table: &str, offset: u64) -> Result<Rows, BrowseError> {
        if offset > MAX_OFFSET {
            return Err(BrowseError::invalid(format!(
                "pages start at most {MAX_OFFSET} rows in"
            )));
        }
        let client = self.connect().await?;
        let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
        let found = client
            .query_one(
                "SELECT c.oid::int8, c.reltuples::bigint FROM pg_class c \
                 WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'm', 'v', 'f')",
                &[&qualified],
            )
            .await;
        let (oid, estimate): (i64, i64) = match found {
            Ok(r) => (r.get(0), r.get(1)),
            Err(_) => {
                return Err(BrowseError::NotFound {
                    what: format!("table {schema}.{table}"),
                });
            }
        };
        let oid = oid as u32;
        let columns: Vec<Column> = client
            .query(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&oid],
            )
            .await
            .map_err(|e| self.query_error(&e))?
            .iter()
            .map(|r| Column {
                name: r.get(0),
                data_type: r.get(1),
            })
            .collect();
        let order: Vec<String> = client
            .query(
                "SELECT a.attname::text FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = $1 AND i.indisprimary \
                 ORDER BY array_position(i.indkey::int2[], a.attnum)",
                &[&oid],
            )
            .await
            .map_err(|e| self.query_error(&e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let sql = page_sql(&qualified, &columns, &order, offset);
        let messages = client
            .simple_query(&sql)
            .await
            .map_err(|e| self.query_error(&e))?;
        let mut rows: Vec<Vec<Cell>> = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(
                    (0..columns.len())
                        .map(|i| cell(r.get(i)))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .collect();
        let more = rows.len() > PAGE_SIZE;
        rows.truncate(PAGE_SIZE);
        let total = count(&client, schema, table, estimate)
            .await
            .map_or_else(|e| format!("unknown ({})", pg_error(&e)), |c| c.to_string());
        Ok(Rows {
            schema: schema.to_string(),
            table: table.to_string(),
            columns,
            rows,
            count: total,
            offset,
            next: more.then_some(offset + PAGE_SIZE as u64),
            previous: (offset > 0).then(|| offset.saturating_sub(PAGE_SIZE as u64)),
            order,
        })
    }
}

/// A row count that reads at most [`EXACT_COUNT`] rows: the estimate for a table the planner
/// knows to be large, else a bounded count.
async fn count(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
    estimate: i64,
) -> Result<RowCount, tokio_postgres::Error> {
    if estimate > EXACT_COUNT {
        return Ok(RowCount::About(estimate));
    }
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM {}.{} LIMIT {}) s",
        quote_ident(schema),
        quote_ident(table),
        EXACT_COUNT + 1
    );
    let n: i64 = client.query_one(&sql, &[]).await?.get(0);
    Ok(counted(n, estimate))
}

/// What a bounded count says, with the estimate for a table it could not finish.
pub fn counted(n: i64, estimate: i64) -> RowCount {
    if n <= EXACT_COUNT {
        RowCount::Exact(n)
    } else if estimate > EXACT_COUNT {
        RowCount::About(estimate)
    } else {
        RowCount::MoreThan(EXACT_COUNT)
    }
}

/// The page's query: every column as text cut a little past what is shown (so a cut shows),
/// one row more than a page (so the next page's existence shows).
pub fn page_sql(qualified: &str, columns: &[Column], order: &[String], offset: u64) -> String {
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("left({}::text, {})", quote_ident(&c.name), VALUE_CHARS + 1))
        .collect();
    let select = if select.is_empty() {
        // A table without columns still has rows.
        "NULL".to_string()
    } else {
        select.join(", ")
    };
    let order_by = if order.is_empty() {
        String::new()
    } else {
        let keys: Vec<String> = order.iter().map(|k| quote_ident(k)).collect();
        format!(" ORDER BY {}", keys.join(", "))
    };
    format!(
        "SELECT {select} FROM {qualified}{order_by} LIMIT {} OFFSET {offset}",
        PAGE_SIZE + 1
    )
}

fn cell(v: Option<&str>) -> Cell {
    match v {
        None => Cell {
            text: None,
            clipped: false,
        },
        Some(s) => {
            let (text, clipped) = clip(s, VALUE_CHARS);
            Cell {
                text: Some(text),
                clipped,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_tables_are_estimated_not_counted() {
        assert_eq!(counted(3, -1), RowCount::Exact(3));
        assert_eq!(
            counted(EXACT_COUNT + 1, 1_000_000),
            RowCount::About(1_000_000)
        );
        assert_eq!(
            counted(EXACT_COUNT + 1, -1),
            RowCount::MoreThan(EXACT_COUNT)
        );
        assert_eq!(RowCount::About(5).to_string(), "about 5");
    }

    #[test]
    fn page_queries_quote_names_and_order_by_the_key() {
        let cols = vec![
            Column {
                name: "id".into(),
                data_type: "integer".into(),
            },
            Column {
                name: "Odd \"name\"".into(),
                data_type: "text".into(),
            },
        ];
        let sql = page_sql("\"public\".\"t\"", &cols, &["id".into()], 50);
        assert_eq!(
            sql,
            format!(
                "SELECT left(\"id\"::text, {n}), left(\"Odd \"\"name\"\"\"::text, {n}) FROM \"public\".\"t\" ORDER BY \"id\" LIMIT 51 OFFSET 50",
                n = VALUE_CHARS + 1
            )
        );
        assert!(!page_sql("t", &[], &[], 0).contains("ORDER BY"));
    }

    #[test]
    fn null_is_not_the_empty_string() {
        assert_eq!(cell(None).text, None);
        assert_eq!(cell(Some("")).text.as_deref(), Some(""));
        assert!(cell(Some(&"x".repeat(VALUE_CHARS + 1))).clipped);
    }
}
