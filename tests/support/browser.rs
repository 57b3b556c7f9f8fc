//! A real headless Chromium for the browser tests, driven over WebDriver: Debian's `chromium` and
//! `chromium-driver` (chromedriver started on a free port for each test) and the `fantoccini`
//! client. Screenshots go to `target/ui-screenshots/` as the tests' artifacts.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};

/// One chromedriver and one browser session; both end when dropped (or at [`Browser::close`]).
pub struct Browser {
    pub client: Client,
    driver: Child,
}

/// Where chromedriver is: `VIBEDEV_TEST_CHROMEDRIVER`, else Debian's path, else `chromedriver`.
fn chromedriver() -> String {
    if let Ok(path) = std::env::var("VIBEDEV_TEST_CHROMEDRIVER") {
        return path;
    }
    if std::path::Path::new("/usr/bin/chromedriver").exists() {
        return "/usr/bin/chromedriver".to_string();
    }
    "chromedriver".to_string()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width` x `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        Browser::start_with(width, height, &[]).await
    }

    /// The same with more Chromium switches (e.g. `--force-dark-mode`).
    pub async fn start_with(width: u32, height: u32, switches: &[&str]) -> Browser {
        let port = super::free_port();
        // Its own process group, so that the browser it started goes with it even when a
        // failing test never closes the session.
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): install Debian's chromium and \
                     chromium-driver (scripts/test does it when run as root)"
                )
            });
        let mut caps = serde_json::Map::new();
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            format!("--window-size={width},{height}"),
        ];
        args.extend(switches.iter().map(|s| s.to_string()));
        if let Ok(extra) = std::env::var("VIBEDEV_TEST_CHROMIUM_ARGS") {
            args.extend(extra.split_whitespace().map(str::to_string));
        }
        caps.insert(
            "goog:chromeOptions".to_string(),
            serde_json::json!({ "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let browser = Browser {
            client: loop {
                match ClientBuilder::rustls()
                    .expect("rustls connector")
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => break client,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("no WebDriver session from chromedriver at {url}: {e}"),
                }
            },
            driver,
        };
        browser.client.set_window_size(width, height).await.ok();
        browser
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The first element matching `css`, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no element {css} on {}: {e}", self.url().await),
        }
    }

    /// The visible text of the first element matching `css` now (None when there is none).
    /// Read in one script, so a live section replaced meanwhile cannot leave a stale handle.
    pub async fn text(&self, css: &str) -> Option<String> {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : null;",
            serde_json::Value::String(css.to_string())
        );
        self.js(&script).await.as_str().map(str::to_string)
    }

    /// Waits up to `secs` for an element matching `css` whose text satisfies `ok`; its text.
    pub async fn wait_text(&self, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.text(css).await;
            if let Some(text) = text.as_deref().filter(|t| ok(t)) {
                return text.to_string();
            }
            if Instant::now() >= deadline {
                panic!(
                    "{css} shows {text:?} on {} after {secs} s",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching `css`, again if a live update replaced it meanwhile.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() => continue,
                Err(e) => panic!("cannot click {css}: {e}"),
            }
        }
        panic!("{css} kept being replaced while clicking it");
    }

    /// Every element matching `css` now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("cannot look for {css}: {e}"))
    }

    /// The visible text of the page's body.
    pub async fn body_text(&self) -> String {
        self.find("body").await.text().await.unwrap_or_default()
    }

    /// Waits up to `secs` for the page's visible text to contain `needle`; returns the text.
    pub async fn wait_for_text(&self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.body_text().await;
            if text.contains(needle) {
                return text;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{needle:?} did not appear on {} within {secs} s; the page shows:\n{text}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Saves a PNG of the window as `target/ui-screenshots/NAME.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Ends the session (the browser closes), then chromedriver (on drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Ends chromedriver and every browser process it started.
fn kill_group(driver: &mut Child) {
    if let Ok(pid) = i32::try_from(driver.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group chromedriver leads.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = driver.wait();
}

/// `target/ui-screenshots` (beside the test binaries' own temporary folder).
pub fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map_or(tmp.clone(), |t| t.to_path_buf())
        .join("ui-screenshots")
}
