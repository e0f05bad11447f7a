//! `livechat replay` (and `serve --read-only --as-of`): the views as they were at a point of
//! the log, rebuilt from the events up to it into a separate store. The live views are
//! never touched.

use store::StoreUrl;

use crate::as_of::replayed;
use crate::cli::ReplayArgs;
use crate::failure::Failure;
use crate::store_open::open_migrated;

pub async fn run(url: &StoreUrl, args: ReplayArgs) -> Result<(), Failure> {
    let source = open_migrated(url).await?;
    let target = replayed(&source, args.until, &args.into).await?;
    let views = target.views();
    match args.view {
        Some(name) => {
            if !projections::all().iter().any(|p| p.views().contains(&name.as_str())) {
                return Err(Failure::Usage(format!("no view called '{name}' (see `projections status`)")));
            }
            for d in store::views::list_all(views.as_ref(), &name, None).await? {
                let line = serde_json::json!({
                    "view": name, "id": d.id, "partition": d.partition, "sort_key": d.sort_key, "body": d.body,
                });
                println!("{line}");
            }
        }
        None => {
            for p in projections::all() {
                for view in p.views() {
                    let n = store::views::list_all(views.as_ref(), view, None).await?.len();
                    println!("{view}\t{n}");
                }
            }
        }
    }
    Ok(())
}
