//! An experiment as a plan of cells that share nothing but the output directory, so that a
//! scheduler (Slurm, a Kubernetes Indexed Job, `xargs -P`) can run them apart:
//!
//! - `train-NAME`, one per trained network: its run directory `OUT/runs/NAME`, written as
//!   `repsim train` writes it (atomic, resumed from its newest checkpoint when interrupted,
//!   reused when complete);
//! - `analysis-PART`, one per part of the analysis ([`Experiment::analysis_parts`]; e.g. one
//!   per model of `wide_vs_deep`), each needing the trainings it measures;
//! - `report`, needing every cell: it combines the parts into `results.json`, the figures and
//!   `summary.md`.
//!
//! Each cell leaves a record `OUT/cells/ID.json` (written atomically): how long it took and,
//! for an analysis cell, its result and the fingerprint of what it was computed from (the
//! experiment's configuration and the weights it measured). A cell is complete when its run
//! is complete (training) or its record's fingerprint matches (analysis, report); a complete
//! cell returns at once. The single-process run ([`run`]) is every cell in order, so both
//! ways give the same numbers; a run whose training cells ran side by side as processes on one
//! machine (the command line's `--jobs`) goes on with [`run_after_training`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::harness::{Context, Experiment, ExperimentArgs, ExperimentResults, Training};
use crate::error::{Error, Result};

/// What a cell does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Trains one network.
    Train,
    /// Measures one part of the analysis.
    Analysis,
    /// Combines the analysis into `results.json`, figures and `summary.md`.
    Report,
}

impl CellKind {
    /// Its name in the plan (`train`, `analysis`, `report`).
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Train => "train",
            CellKind::Analysis => "analysis",
            CellKind::Report => "report",
        }
    }
}

impl std::str::FromStr for CellKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(CellKind::Train),
            "analysis" => Ok(CellKind::Analysis),
            "report" => Ok(CellKind::Report),
            other => Err(Error::Input(format!(
                "unknown kind of cell {other:?}; use train, analysis or report"
            ))),
        }
    }
}

/// One cell of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// `train-NAME`, `analysis-PART` or `report`.
    pub id: String,
    /// What it does.
    pub kind: CellKind,
    /// The cells that must be complete before it runs.
    pub needs: Vec<String>,
    /// A training cell's work, relative to the plan's other trainings, so a runner can start
    /// the longest first: the model's parameters times the inputs it trains on (epochs x
    /// training examples x repeats) times an input's size (pixels, or a text window's tokens);
    /// 0 for the other cells.
    #[serde(default)]
    pub work: u64,
}

/// An experiment's cells, in an order that runs each after what it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The experiment.
    pub experiment: String,
    /// The output directory the cells share (absolute).
    pub out: PathBuf,
    /// The cells.
    pub cells: Vec<Cell>,
}

impl Plan {
    /// The cell called `id`.
    pub fn cell(&self, id: &str) -> Result<&Cell> {
        self.cells.iter().find(|c| c.id == id).ok_or_else(|| {
            Error::Input(format!(
                "{} has no cell {id:?}; its cells are: {}",
                self.experiment,
                self.cells
                    .iter()
                    .map(|c| c.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// The cells of one kind.
    pub fn of_kind(&self, kind: CellKind) -> impl Iterator<Item = &Cell> {
        self.cells.iter().filter(move |c| c.kind == kind)
    }

    /// Where a runner sends cell `id`'s output (`OUT/logs/ID.log`).
    pub fn log_path(&self, id: &str) -> PathBuf {
        log_path(&self.out, id)
    }
}

/// `OUT/logs/ID.log`.
fn log_path(out: &Path, id: &str) -> PathBuf {
    out.join("logs").join(format!("{id}.log"))
}

/// What a cell left in `OUT/cells/ID.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellRecord {
    /// The cell.
    pub cell: String,
    /// Its kind.
    pub kind: CellKind,
    /// What it was computed from (analysis and report cells).
    pub fingerprint: Option<String>,
    /// Wall time of the invocation that made this record, seconds.
    pub seconds: f64,
    /// Training cells: whether the weights were already complete when it ran.
    pub reused: Option<bool>,
    /// Analysis cells: the part's result.
    pub part: Option<serde_json::Value>,
}

impl CellRecord {
    /// The record of `cell` that took `seconds`, with nothing else set.
    fn of(cell: &Cell, seconds: f64) -> Self {
        CellRecord {
            cell: cell.id.clone(),
            kind: cell.kind,
            fingerprint: None,
            seconds,
            reused: None,
            part: None,
        }
    }
}

/// What running a cell did.
#[derive(Debug, Clone, PartialEq)]
pub enum CellOutcome {
    /// The cell ran.
    Ran {
        /// Wall time, seconds.
        seconds: f64,
    },
    /// It was complete already; nothing was done.
    AlreadyComplete,
}

/// Training names become cell ids and file names: letters, digits, `-`, `_`, `.`.
fn check_name(name: &str, what: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Failure(format!(
            "{what} {name:?} cannot name a cell (letters, digits, '-', '_', '.')"
        )))
    }
}

/// The experiment's configuration from `args`, checked.
fn config_of<E: Experiment>(args: &ExperimentArgs) -> Result<E> {
    let mut config = args.config_or(E::for_scale(args.scale()))?;
    if let Some(seeds) = args.seeds {
        config.set_seeds(seeds)?;
    }
    config.check(args)?;
    Ok(config)
}

/// The plan of experiment `E` with the configuration of `args`. Writes nothing.
pub fn plan<E: Experiment>(args: &ExperimentArgs) -> Result<Plan> {
    let config = config_of::<E>(args)?;
    plan_with::<E>(args, &config)
}

fn plan_with<E: Experiment>(args: &ExperimentArgs, config: &E) -> Result<Plan> {
    let trainings = config.trainings(args)?;
    let parts = config.analysis_parts(&trainings);
    let mut cells = Vec::new();
    for training in &trainings {
        check_name(&training.name, "the training")?;
        cells.push(Cell {
            id: train_id(&training.name),
            kind: CellKind::Train,
            needs: Vec::new(),
            work: training_work(training),
        });
    }
    for part in &parts {
        check_name(&part.name, "the analysis part")?;
        for need in &part.needs {
            if !trainings.iter().any(|t| &t.name == need) {
                return Err(Error::Failure(format!(
                    "{}: analysis part {} needs {need:?}, which is not trained",
                    E::NAME,
                    part.name
                )));
            }
        }
        cells.push(Cell {
            id: analysis_id(&part.name),
            kind: CellKind::Analysis,
            needs: part.needs.iter().map(|n| train_id(n)).collect(),
            work: 0,
        });
    }
    let needs = cells.iter().map(|c| c.id.clone()).collect();
    cells.push(Cell {
        id: "report".into(),
        kind: CellKind::Report,
        needs,
        work: 0,
    });
    let out = args.out_dir(E::NAME);
    let out = std::path::absolute(&out)
        .map_err(|e| Error::Input(format!("--out {}: {e}", out.display())))?;
    Ok(Plan {
        experiment: E::NAME.into(),
        out,
        cells,
    })
}

/// A training's work, for ordering: its parameters times the inputs it trains on (epochs x
/// training examples x repeats) times the input's size (pixels of an image, tokens of a text
/// window). Proportional to a convolutional network's arithmetic only where the architectures
/// compared are alike (the grids of one experiment), which is all a runner ordering the
/// cells of one plan needs. 0 when the model cannot be built (its cell then says why).
fn training_work(training: &Training) -> u64 {
    let config = &training.config;
    let parameters = config
        .model
        .init(&burn::tensor::Device::flex())
        .map_or(0, |model| model.num_params()) as u64;
    let data = &config.data;
    let size = if data.is_text() {
        data.window
    } else {
        data.side * data.side
    };
    let inputs = config.epochs * data.train_count.unwrap_or(1) * data.train_repeats.max(1);
    parameters.saturating_mul((inputs * size.max(1)) as u64)
}

fn train_id(name: &str) -> String {
    format!("train-{name}")
}

fn analysis_id(part: &str) -> String {
    format!("analysis-{part}")
}

/// Runs experiment `E` with its configuration from `args` (`--config` or the scale): every
/// cell of its plan in order. Returns the path of `summary.md`.
pub fn run<E: Experiment>(args: &ExperimentArgs) -> Result<PathBuf> {
    let config = config_of::<E>(args)?;
    run_with::<E>(args, &config)
}

/// Runs experiment `E` with an explicit configuration, every cell in order.
pub fn run_with<E: Experiment>(args: &ExperimentArgs, config: &E) -> Result<PathBuf> {
    config.check(args)?;
    let plan = plan_with::<E>(args, config)?;
    let ctx = open_context::<E>(args)?;
    log::info!("{}", config.headline(args));
    for cell in &plan.cells {
        run_cell_in::<E>(&ctx, config, &plan, cell)?;
    }
    log::info!("wall time: {:.0} s", ctx.elapsed());
    Ok(ctx.out.join("summary.md"))
}

/// How an experiment's training cells ran when they ran side by side on this machine, before
/// its analysis ([`run_after_training`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingStage {
    /// Wall time of the whole stage, seconds.
    pub seconds: f64,
    /// Training cells at once, each a process.
    pub processes: usize,
    /// Threads of each process.
    pub threads: usize,
}

/// Runs experiment `E` with its training cells run by `train_elsewhere` (the command line's
/// `--jobs`: one process per training cell, side by side), which returns how that went: the
/// output directory is checked and opened first, as for [`run`], then `train_elsewhere` is
/// given the plan, then the analysis and report cells run here. The training cells are not run
/// here (their records stay as the processes left them, so which models were reused is theirs
/// to say); an analysis cell whose trainings are missing is refused, naming them. The report's
/// training time is the stage's wall time, and its device line says how the trainings ran.
/// Returns the path of `summary.md`.
pub fn run_after_training<E: Experiment>(
    args: &ExperimentArgs,
    train_elsewhere: &mut dyn FnMut(&Plan) -> Result<TrainingStage>,
) -> Result<PathBuf> {
    let config = config_of::<E>(args)?;
    let plan = plan_with::<E>(args, &config)?;
    let mut ctx = open_context::<E>(args)?;
    log::info!("{}", config.headline(args));
    let stage = train_elsewhere(&plan)?;
    ctx.training_stage_seconds = Some(stage.seconds);
    ctx.device_name = format!(
        "{}; the trainings {} at a time, each a process of {} thread{}",
        ctx.device_name,
        stage.processes,
        stage.threads,
        if stage.threads == 1 { "" } else { "s" }
    );
    for cell in plan.cells.iter().filter(|c| c.kind != CellKind::Train) {
        run_cell_in::<E>(&ctx, &config, &plan, cell)?;
    }
    log::info!("wall time: {:.0} s", ctx.elapsed());
    Ok(ctx.out.join("summary.md"))
}

/// Runs the cell `id` of experiment `E`'s plan for `args`. A complete cell returns
/// [`CellOutcome::AlreadyComplete`] at once; a cell whose needs are missing is refused with
/// them listed (and their log files, where a runner left them).
pub fn run_cell<E: Experiment>(args: &ExperimentArgs, id: &str) -> Result<CellOutcome> {
    let config = config_of::<E>(args)?;
    let plan = plan_with::<E>(args, &config)?;
    let cell = plan.cell(id)?.clone();
    let out_existed = args.out_dir(E::NAME).exists();
    let ctx = open_context::<E>(args)?;
    let outcome = run_cell_in::<E>(&ctx, &config, &plan, &cell);
    if outcome.is_err() && !out_existed {
        // A refused cell (its needs missing) leaves no empty OUT behind.
        remove_if_empty(&ctx.out);
    }
    outcome
}

/// Removes `dir` when it holds nothing but empty directories.
fn remove_if_empty(dir: &Path) {
    fn holds_files(dir: &Path) -> bool {
        std::fs::read_dir(dir).map_or(true, |entries| {
            entries
                .flatten()
                .any(|e| !e.path().is_dir() || holds_files(&e.path()))
        })
    }
    if !holds_files(dir) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The experiment's context, with the temporaries an interrupted cell left in `OUT/cells` and
/// `OUT/slurm` removed (the harness removes those of `OUT` and of the run directories).
fn open_context<E: Experiment>(args: &ExperimentArgs) -> Result<Context> {
    let ctx = Context::new(args, E::NAME)?;
    for dir in ["cells", "slurm"] {
        let dir = ctx.out.join(dir);
        if dir.is_dir() {
            for removed in repsim_durable::remove_stale_temporaries(&dir) {
                log::info!("removed {}, left by an interrupted cell", removed.display());
            }
        }
    }
    Ok(ctx)
}

/// Whether `path` holds a complete results file (a JSON object with its configuration, trainings
/// and provenance): a damaged one is written again by the report cell, never kept.
fn complete_results(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| {
        ["config", "training", "provenance"]
            .iter()
            .all(|key| v.get(key).is_some())
    })
}

/// The record of cell `id`, if it left one that can be read.
fn read_record(out: &Path, id: &str) -> Option<CellRecord> {
    let text = std::fs::read_to_string(record_path(out, id)).ok()?;
    serde_json::from_str(&text).ok()
}

fn record_path(out: &Path, id: &str) -> PathBuf {
    out.join("cells").join(format!("{id}.json"))
}

fn write_record(out: &Path, record: &CellRecord) -> Result<()> {
    let path = record_path(out, &record.cell);
    let dir = path.parent().unwrap_or(out);
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Failure(format!("{}: cannot create: {e}", dir.display())))?;
    repsim_durable::write_json(&path, record)?;
    Ok(())
}

/// FNV-1a over `parts`, each followed by a separator ([`repsim_durable::fnv1a64`]).
fn fingerprint(parts: &[String]) -> String {
    repsim_durable::fnv1a64(parts)
}

fn json_text(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Failure(format!("as JSON: {e}")))
}

/// The version of the analysis parts' types: part of every analysis fingerprint, so parts
/// cached by an older repsim whose types had other fields are computed again instead of failing
/// to read. Raise it whenever an experiment's part type (its `results.json` entries) changes.
/// 2: `wide_vs_deep` models carry their training-set size, steps, the first PC alone and the
/// block contrast around its removal.
pub const ANALYSIS_SCHEMA: u32 = 2;

/// What an analysis part is computed from: the experiment, its configuration, the seed and
/// data, the part, the parts' schema, and each training's config and final weights (their hash).
fn analysis_fingerprint<E: Experiment>(
    ctx: &Context,
    config: &E,
    part: &str,
    runs: &[super::harness::TrainedRun],
) -> Result<String> {
    let mut parts = vec![
        E::NAME.to_string(),
        json_text(config)?,
        ctx.args.seed.to_string(),
        ctx.args.data.clone(),
        part.to_string(),
        format!("schema {ANALYSIS_SCHEMA}"),
    ];
    for run in runs {
        let weights = run.dir.join(repsim_train::FINAL_WEIGHTS);
        let (hash, bytes) = repsim_train::durable::content_hash(&weights)?;
        parts.push(format!(
            "{}:{}:{hash:016x}:{bytes}",
            run.name,
            json_text(&run.config)?
        ));
    }
    Ok(fingerprint(&parts))
}

/// The complete run of each of `names` (a training of `trainings`), or the list of cells that
/// are missing or incomplete.
fn completed_runs(
    ctx: &Context,
    trainings: &[Training],
    names: &[String],
    missing: &mut Vec<String>,
) -> Vec<super::harness::TrainedRun> {
    let mut runs = Vec::new();
    for name in names {
        let Some(training) = trainings.iter().find(|t| &t.name == name) else {
            missing.push(train_id(name));
            continue;
        };
        let id = train_id(name);
        // `reused` as the training cell's last invocation found it.
        let reused = read_record(&ctx.out, &id)
            .and_then(|r| r.reused)
            .unwrap_or(true);
        match ctx.completed(training, reused) {
            Some(run) => runs.push(run),
            None => missing.push(id),
        }
    }
    runs
}

/// Refuses to run `cell` while `missing` cells are not complete, naming each and its log.
fn refuse_missing(ctx: &Context, cell: &Cell, missing: &[String]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let lines = missing
        .iter()
        .map(|id| {
            let log = log_path(&ctx.out, id);
            if log.is_file() {
                format!("  {id} (log: {})", log.display())
            } else {
                format!("  {id}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    Err(Error::Input(format!(
        "cell {} cannot run yet: {} cell{} it needs {} missing or incomplete in {}:\n{lines}",
        cell.id,
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        if missing.len() == 1 { "is" } else { "are" },
        ctx.out.display()
    )))
}

fn run_cell_in<E: Experiment>(
    ctx: &Context,
    config: &E,
    plan: &Plan,
    cell: &Cell,
) -> Result<CellOutcome> {
    let started = Instant::now();
    let trainings = config.trainings(&ctx.args)?;
    let outcome = match cell.kind {
        CellKind::Train => {
            let training = trainings
                .iter()
                .find(|t| train_id(&t.name) == cell.id)
                .ok_or_else(|| Error::Failure(format!("no training for cell {}", cell.id)))?;
            let run = ctx.train_or_reuse(training)?;
            write_record(
                &ctx.out,
                &CellRecord {
                    reused: Some(run.reused),
                    ..CellRecord::of(cell, started.elapsed().as_secs_f64())
                },
            )?;
            if run.reused {
                CellOutcome::AlreadyComplete
            } else {
                CellOutcome::Ran {
                    seconds: started.elapsed().as_secs_f64(),
                }
            }
        }
        CellKind::Analysis => {
            let parts = config.analysis_parts(&trainings);
            let part = parts
                .iter()
                .find(|p| analysis_id(&p.name) == cell.id)
                .ok_or_else(|| Error::Failure(format!("no analysis part for cell {}", cell.id)))?;
            let mut missing = Vec::new();
            let runs = completed_runs(ctx, &trainings, &part.needs, &mut missing);
            refuse_missing(ctx, cell, &missing)?;
            let print = analysis_fingerprint::<E>(ctx, config, &part.name, &runs)?;
            if read_record(&ctx.out, &cell.id).is_some_and(|r| {
                r.fingerprint.as_deref() == Some(print.as_str()) && r.part.is_some()
            }) {
                CellOutcome::AlreadyComplete
            } else {
                let value = config.analyse_part(ctx, &part.name, &runs)?;
                let seconds = started.elapsed().as_secs_f64();
                write_record(
                    &ctx.out,
                    &CellRecord {
                        fingerprint: Some(print),
                        part: Some(value),
                        ..CellRecord::of(cell, seconds)
                    },
                )?;
                CellOutcome::Ran { seconds }
            }
        }
        CellKind::Report => report::<E>(ctx, config, plan, cell, &trainings, started)?,
    };
    match &outcome {
        CellOutcome::AlreadyComplete => {
            log::info!("cell {}: already complete, nothing to do", cell.id)
        }
        CellOutcome::Ran { seconds } => log::info!("cell {}: done in {seconds:.1} s", cell.id),
    }
    Ok(outcome)
}

/// The report cell: every training and analysis cell must be complete (their records'
/// fingerprints matching today's weights); combines the parts, draws the figures, writes
/// `results.json` and `summary.md`.
fn report<E: Experiment>(
    ctx: &Context,
    config: &E,
    plan: &Plan,
    cell: &Cell,
    trainings: &[Training],
    started: Instant,
) -> Result<CellOutcome> {
    let names: Vec<String> = trainings.iter().map(|t| t.name.clone()).collect();
    let mut missing = Vec::new();
    let runs = completed_runs(ctx, trainings, &names, &mut missing);
    let parts_plan = config.analysis_parts(trainings);
    let mut parts = Vec::new();
    let mut analysis_seconds = 0.0;
    let mut prints = vec![json_text(config)?];
    for part in &parts_plan {
        let id = analysis_id(&part.name);
        let needed: Vec<_> = part
            .needs
            .iter()
            .filter_map(|n| runs.iter().find(|r| &r.name == n).cloned())
            .collect();
        let record = read_record(&ctx.out, &id);
        let current = if needed.len() == part.needs.len() {
            Some(analysis_fingerprint::<E>(ctx, config, &part.name, &needed)?)
        } else {
            None
        };
        match record {
            Some(CellRecord {
                fingerprint: Some(print),
                part: Some(value),
                seconds,
                ..
            }) if current.as_deref() == Some(print.as_str()) => {
                parts.push(value);
                analysis_seconds += seconds;
                prints.push(print);
            }
            _ => missing.push(id),
        }
    }
    refuse_missing(ctx, cell, &missing)?;
    let train_records: Vec<CellRecord> = plan
        .of_kind(CellKind::Train)
        .filter_map(|c| read_record(&ctx.out, &c.id))
        .collect();
    let train_seconds = ctx
        .training_stage_seconds
        .unwrap_or_else(|| train_records.iter().map(|r| r.seconds).sum());
    // Whether weights were reused depends on how often their cells ran, not on the results:
    // it is no part of the report's fingerprint.
    for run in &runs {
        prints.push(run.name.clone());
    }
    let print = fingerprint(&prints);
    let summary_path = ctx.out.join("summary.md");
    if read_record(&ctx.out, &cell.id).is_some_and(|r| r.fingerprint.as_deref() == Some(&print))
        && summary_path.is_file()
        && complete_results(&ctx.out.join("results.json"))
    {
        return Ok(CellOutcome::AlreadyComplete);
    }
    let analysis = config.combine(&runs, parts)?;
    let figures = config.figures(ctx, &analysis)?;
    let report_seconds = started.elapsed().as_secs_f64();
    let provenance = ctx.provenance(
        train_seconds,
        runs.iter().map(|r| r.training_seconds()).sum(),
        analysis_seconds + report_seconds,
        runs.iter()
            .filter(|r| r.reused)
            .map(|r| r.name.clone())
            .collect(),
    );
    let mut summary = config.summary(&analysis, &provenance, &figures);
    summary.push_str(&format!(
        "Reproduce: `cargo run --example {} -- {}`{}. Configs and seeds: `results.json`.\n",
        E::NAME,
        ctx.args.reproduce_flags()?,
        E::reproduce_note(&analysis)
    ));
    let results = ExperimentResults {
        config: config.clone(),
        training: trainings.iter().map(|t| t.config.clone()).collect(),
        analysis,
        provenance,
    };
    ctx.write_json("results.json", &results)?;
    ctx.write_text("summary.md", &summary)?;
    let seconds = started.elapsed().as_secs_f64();
    write_record(
        &ctx.out,
        &CellRecord {
            fingerprint: Some(print),
            ..CellRecord::of(cell, seconds)
        },
    )?;
    log::info!("results: {}", summary_path.display());
    Ok(CellOutcome::Ran { seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_names_are_file_names() {
        assert!(check_name("resnet20x1-seed2", "t").is_ok());
        assert!(check_name("a/b", "t").is_err());
        assert!(check_name("", "t").is_err());
        assert!(check_name("..", "t").is_err());
        assert!(check_name("a b", "t").is_err());
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        let ab = fingerprint(&["ab".into(), "c".into()]);
        let a_bc = fingerprint(&["a".into(), "bc".into()]);
        assert_ne!(ab, a_bc);
        assert_eq!(ab, fingerprint(&["ab".into(), "c".into()]));
    }
}
