//! The images a stack needs, before any container is created: built where the compose file says
//! `build:` and the image is missing or stale, pulled where missing.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::engine::Engine;
use crate::engine::build::BuildEvent;
use crate::engine::containers::ContainerInfo;
use crate::engine::images::PullEvent;
use crate::stack::{Action, ServiceSpec, Why};

use super::{Event, Reporter, UpError};

/// Builds the images of the services with `build:` that need it: missing, built from other
/// files or settings than now (the hash label on the image), or `force`. A service that also
/// names `image:` is built only when that image is missing (or forced), as Compose does.
pub(super) async fn build_images(
    engine: &Engine,
    services: &[ServiceSpec],
    force: bool,
    report: &Reporter,
) -> Result<(), UpError> {
    let mut built = BTreeSet::new();
    for spec in services {
        let Some(plan) = &spec.build else { continue };
        if !built.insert(plan.request.tag.clone()) {
            continue;
        }
        let Some(context) = engine
            .context_to_build(&plan.request, plan.only_if_missing, force)
            .await?
        else {
            continue;
        };
        let start = Instant::now();
        report(Event::BuildStarted {
            service: spec.name.clone(),
            image: plan.request.tag.clone(),
        });
        let r = report.clone();
        let service = spec.name.clone();
        engine
            .build(&plan.request, context, &move |ev| match ev {
                BuildEvent::Output(line) => r(Event::BuildOutput {
                    service: service.clone(),
                    line,
                }),
            })
            .await?;
        report(Event::BuildDone {
            service: spec.name.clone(),
            image: plan.request.tag.clone(),
            elapsed: start.elapsed(),
        });
    }
    Ok(())
}

/// A container of a built service made from another image than the one its tag names now
/// (the image was rebuilt) is recreated.
pub(super) async fn recreate_on_new_images(
    engine: &Engine,
    plans: Vec<(ServiceSpec, Action)>,
    containers: &[ContainerInfo],
) -> Result<Vec<(ServiceSpec, Action)>, UpError> {
    let mut out = Vec::with_capacity(plans.len());
    for (spec, action) in plans {
        let id = match &action {
            Action::Keep { id } | Action::Start { id } | Action::Unpause { id }
                if spec.build.is_some() =>
            {
                id.clone()
            }
            _ => {
                out.push((spec, action));
                continue;
            }
        };
        let current = engine.image_id(&spec.image).await?;
        let used = containers
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.image_id.clone());
        let action = match (current, used) {
            (Some(now), Some(then)) if now != then => Action::Recreate {
                id,
                why: Why::Image,
            },
            _ => action,
        };
        out.push((spec, action));
    }
    Ok(out)
}

/// Pulls every image a new container needs and the engine lacks, in parallel, before anything
/// is created: a pull that fails leaves the stack as it was.
pub(super) async fn pull_missing(
    engine: &Engine,
    plans: &[(ServiceSpec, Action)],
    report: &Reporter,
) -> Result<(), UpError> {
    let images: BTreeSet<String> = plans
        .iter()
        .filter(|(s, _)| s.build.is_none())
        .filter(|(_, a)| matches!(a, Action::Create | Action::Recreate { .. }))
        .map(|(s, _)| s.image.clone())
        .collect();
    let r = report.clone();
    engine
        .pull_missing(&images, &move |image, ev| {
            let image = image.to_string();
            r(match ev {
                PullEvent::Started => Event::PullStarted { image },
                PullEvent::Progress { current, total } => Event::PullProgress {
                    image,
                    current,
                    total,
                },
                PullEvent::Status(status) => Event::PullStatus { image, status },
                PullEvent::Done { elapsed } => Event::PullDone { image, elapsed },
            })
        })
        .await?;
    Ok(())
}
