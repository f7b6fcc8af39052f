//! `dredge druid-spec` and `dredge athena-ddl`: what reads the Parquet
//! files, generated from the schema for a bucket and prefix.

use std::process::ExitCode;

use dredge_columnar::athena::{create_table, glue_columns, DEFAULT_SINCE};
use dredge_columnar::druid::{ingestion_spec, Shape};
use dredge_columnar::layout::{Interval, Location, DEFAULT_BUCKET, DEFAULT_PREFIX};

use crate::usage;

#[derive(clap::Args)]
pub struct Place {
    /// S3 bucket of the Parquet files.
    #[arg(long, default_value = DEFAULT_BUCKET)]
    bucket: String,
    /// Key prefix the `dt=YYYY-MM-DD/hour=HH/` partitions are under.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    prefix: String,
}

#[derive(clap::Args)]
pub struct DruidArgs {
    #[command(flatten)]
    place: Place,
    /// Only this interval (`START/END`, RFC 3339): only its days' files are
    /// read. Default: every file under the prefix.
    #[arg(long, value_parser = |text: &str| Interval::parse(text).map_err(|e| e.to_string()))]
    interval: Option<Interval>,
    /// The application-level rollup (per minute) instead of every flow.
    #[arg(long)]
    rollup: bool,
}

#[derive(clap::Args)]
pub struct AthenaArgs {
    #[command(flatten)]
    place: Place,
    #[arg(long, default_value = "flows")]
    table: String,
    #[arg(long, default_value = "default")]
    database: String,
    /// First day partition projection offers (YYYY-MM-DD).
    #[arg(long, default_value_t = DEFAULT_SINCE, value_parser = parse_date)]
    since: time::Date,
    /// Print the `Columns` of the template's `AWS::Glue::Table` instead.
    #[arg(long)]
    glue_columns: bool,
}

fn parse_date(text: &str) -> Result<time::Date, String> {
    time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| format!("expected YYYY-MM-DD: {e}"))
}

impl Place {
    /// A bucket name S3 would refuse is a usage error.
    fn location(&self) -> anyhow::Result<Location> {
        Location::new(&self.bucket, &self.prefix).map_err(|e| usage(e.to_string()))
    }
}

pub fn druid(args: DruidArgs) -> anyhow::Result<ExitCode> {
    let location = args.place.location()?;
    let shape = if args.rollup { Shape::Rollup } else { Shape::Flows };
    println!("{}", serde_json::to_string_pretty(&ingestion_spec(&location, shape, args.interval.as_ref()))?);
    Ok(ExitCode::SUCCESS)
}

pub fn athena(args: AthenaArgs) -> anyhow::Result<ExitCode> {
    if args.glue_columns {
        print!("{}", glue_columns());
        return Ok(ExitCode::SUCCESS);
    }
    let location = args.place.location()?;
    print!("{}", create_table(&location, &args.database, &args.table, args.since));
    Ok(ExitCode::SUCCESS)
}
