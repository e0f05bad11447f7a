//! `livechat report`: the HTTP reports in a terminal, computed by the same code
//! (`api::reports`) from the `report_conversations` view in the store.

use api::reports::{Facts, Kind, Query};
use store::StoreUrl;

use crate::cli::{Format, ReportArgs, ReportKind};
use crate::failure::Failure;
use crate::store_open::open_migrated;

/// The query the arguments describe, or every mistake in one message.
pub fn query(args: &ReportArgs) -> Result<Query, Failure> {
    let kind = match args.kind {
        ReportKind::Conversations => Kind::Conversations,
        ReportKind::Operators => Kind::Operators,
    };
    let mut q = Query::new(kind);
    let mut errors = vec![];
    q.parse_names(args.group_by.as_deref(), args.measures.as_deref(), &mut errors);
    if let (Some(f), Some(t)) = (args.from, args.to) {
        if f >= t {
            errors.push(api::problem::FieldError { field: "from".into(), message: "is not before --to".into() });
        }
    }
    q.country = match args.country.as_deref() {
        None => None,
        Some("none") => Some("none".into()),
        Some(c) => match domain::values::Country::parse("country", c) {
            Ok(c) => Some(c.as_str().to_string()),
            Err(_) => {
                errors.push(api::problem::FieldError {
                    field: "country".into(),
                    message: format!("'{c}' is not an ISO 3166-1 alpha-2 code or `none`"),
                });
                None
            }
        },
    };
    // Parsed into the query's id type (the binary does not depend on `uuid` itself).
    let id = |field: &str, raw: Option<&String>, errors: &mut Vec<api::problem::FieldError>| {
        raw.and_then(|r| match r.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(api::problem::FieldError { field: field.into(), message: format!("'{r}' is not an id") });
                None
            }
        })
    };
    q.channel = id("channel", args.channel.as_ref(), &mut errors);
    q.operator = id("operator", args.operator.as_ref(), &mut errors);
    if !errors.is_empty() {
        let lines: Vec<String> =
            errors.into_iter().map(|e| format!("--{}: {}", e.field.replace('_', "-"), e.message)).collect();
        return Err(Failure::Usage(lines.join("; ")));
    }
    q.from = args.from;
    q.to = args.to;
    q.include_empty = args.include_empty;
    Ok(q)
}

pub async fn run(url: &StoreUrl, args: ReportArgs) -> Result<(), Failure> {
    let q = query(&args)?;
    let store = open_migrated(url).await?;
    let views = store.views();
    if views.projector_state("reports").await?.is_none() {
        eprintln!("livechat: the reports view has not been built yet (run `livechat projections rebuild reports`)");
    }
    let mut facts = Facts::default();
    facts.refresh(views.as_ref()).await?;
    let report = facts.report(&q);
    match args.format {
        Format::Table => print!("{}", report.to_table()),
        Format::Csv => print!("{}", report.to_csv()),
        Format::Json => {
            let json = serde_json::to_string_pretty(&report).map_err(|e| Failure::Runtime(e.to_string()))?;
            println!("{json}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ReportArgs,
    }

    fn parse(argv: &[&str]) -> Result<Query, Failure> {
        let w = Wrap::try_parse_from(std::iter::once("report").chain(argv.iter().copied())).unwrap();
        query(&w.args)
    }

    #[test]
    fn arguments_become_the_apis_query() {
        let q = parse(&["operators", "--group-by", "week,channel", "--from", "2026-11-01", "--country", "be"]).unwrap();
        assert_eq!(q.kind, Kind::Operators);
        assert_eq!(q.group_by.len(), 2);
        assert_eq!(q.from, Some("2026-11-01T00:00:00Z".parse().unwrap()));
        assert_eq!(q.country.as_deref(), Some("BE"));
    }

    #[test]
    fn unknown_names_are_usage_errors_naming_the_flag() {
        let Err(Failure::Usage(msg)) = parse(&["conversations", "--group-by", "planet", "--measures", "mood"]) else {
            panic!("accepted unknown names")
        };
        assert!(msg.contains("--group-by: 'planet'") && msg.contains("--measures: 'mood'"), "{msg}");
    }

    #[test]
    fn without_group_by_both_reports_print_one_total_row() {
        for kind in ["conversations", "operators"] {
            assert!(parse(&[kind]).unwrap().group_by.is_empty(), "{kind}");
        }
    }

    #[test]
    fn an_empty_list_or_name_is_a_one_line_usage_error() {
        for argv in [
            ["operators", "--measures", ""],
            ["operators", "--measures", "count,,rating_avg"],
            ["conversations", "--group-by", ""],
            ["conversations", "--group-by", "channel,"],
        ] {
            let Err(Failure::Usage(msg)) = parse(&argv) else { panic!("{argv:?} accepted") };
            let flag = argv[1];
            assert!(msg.starts_with(&format!("{flag}: ")) && !msg.contains('\n'), "{argv:?}: {msg}");
        }
    }
}
