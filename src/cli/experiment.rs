//! `repsim experiment NAME`: the experiments of `cargo run --example NAME`, with the same flags
//! (the library's [`crate::experiments::ExperimentArgs`], which derives clap's `Args`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::local_jobs::{self, Jobs};
use crate::error::Error as CliError;
use crate::experiments::{
    plan_named, run_after_training_named, run_cell_named, run_named, slurm, Cell, CellKind,
    ExperimentArgs, Plan, TrainingStage, NAMES,
};

/// Flags that split an experiment into cells ([`crate::experiments::cells`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CellFlags {
    /// Print the plan of cells (id, kind, command, what it needs) and write nothing.
    #[arg(long, conflicts_with_all = ["cell", "slurm"])]
    pub plan: bool,
    /// The plan as `json`, or `lines`: one command per line (for `xargs -P`, GNU parallel).
    #[arg(long, default_value = "json", requires = "plan", value_parser = ["json", "lines"])]
    pub plan_format: String,
    /// Only the cells of one stage: train, analysis or report (run the stages in this order).
    #[arg(long, requires = "plan", value_parser = ["train", "analysis", "report"])]
    pub plan_stage: Option<String>,
    /// Run one cell of the plan (an id from --plan).
    #[arg(long, conflicts_with = "slurm")]
    pub cell: Option<String>,
    /// Write Slurm batch scripts for the plan into OUT/slurm (a training array, an analysis
    /// array after it, the report job last).
    #[arg(long)]
    pub slurm: bool,
    /// Extra sbatch options for every job, e.g. "--partition=gpu --gres=gpu:1 --time=4:00:00".
    #[arg(long, requires = "slurm", allow_hyphen_values = true)]
    pub slurm_opts: Option<String>,
    /// Submit the scripts with sbatch and print the job ids.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// Training cells at once on this machine, each a process of its own with an equal share
    /// of the cores as its threads (logs in OUT/logs); the analysis follows in this process.
    /// Default: one per CPU core when training on the CPU (up to the number of trainings), 1
    /// on a GPU. `--jobs 1` trains the models one after the other in this process. The
    /// numbers are the same either way.
    #[arg(long, conflicts_with_all = ["plan", "cell", "slurm"], value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
}

/// Arguments of `repsim experiment`.
#[derive(Debug, clap::Args)]
pub struct ExperimentCommandArgs {
    /// wide_vs_deep, bottom_up, memorize_vs_generalize or resnet_depths.
    pub name: String,
    #[command(flatten)]
    pub flags: ExperimentArgs,
    #[command(flatten)]
    pub cells: CellFlags,
    /// The program and arguments that run this experiment (before its flags): the plan's
    /// commands start with them.
    #[arg(skip)]
    pub program: Vec<String>,
}

/// `--plan`'s JSON.
#[derive(serde::Serialize)]
struct PlanDocument<'a> {
    experiment: &'a str,
    out: &'a std::path::Path,
    cells: Vec<PlannedCell<'a>>,
}

/// One cell of `--plan`'s JSON.
#[derive(serde::Serialize)]
struct PlannedCell<'a> {
    id: &'a str,
    kind: CellKind,
    needs: &'a [String],
    /// The shell command that runs it.
    command: String,
    /// Where `--slurm`'s scripts send its output.
    log: PathBuf,
}

/// Runs `repsim experiment`.
pub fn run(command: ExperimentCommandArgs) -> Result<(), CliError> {
    let name = command.name.as_str();
    let mut args = command.flags.clone();
    // `repsim -q experiment ...`: no progress bars either.
    args.quiet |= crate::logging::verbosity() == crate::logging::Verbosity::Quiet;
    let cells = &command.cells;
    if !cells.plan && !cells.slurm && cells.cell.is_none() {
        let summary = run_whole(&command, &args)?;
        log::info!("results: {}", summary.display());
        return Ok(());
    }
    if let Some(id) = &cells.cell {
        // The library logs whether it ran or was complete already.
        run_cell_named(name, &args, id)?;
        return Ok(());
    }
    let plan = plan_named(name, &args)?;
    let base = cell_command(&command, &args)?;
    if cells.slurm {
        return submit_to_slurm(&plan, &base, cells);
    }
    print_plan(&plan, &base, cells)
}

/// The words that run one cell of this experiment when `--cell ID` is appended: this program
/// (`repsim experiment NAME` or the example) and the cell flags of `args`.
fn cell_command(
    command: &ExperimentCommandArgs,
    args: &ExperimentArgs,
) -> Result<Vec<String>, CliError> {
    let name = command.name.as_str();
    let mut base = if command.program.is_empty() {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::Failure(format!("cannot find this program: {e}")))?;
        vec![
            exe.display().to_string(),
            "experiment".into(),
            name.to_string(),
        ]
    } else {
        command.program.clone()
    };
    base.extend(args.cell_flags(name)?);
    Ok(base)
}

/// The whole experiment on this machine: its training cells side by side as processes when
/// more than one job runs ([`local_jobs`]), then the rest here; or every cell here, in order.
fn run_whole(command: &ExperimentCommandArgs, args: &ExperimentArgs) -> Result<PathBuf, CliError> {
    let name = command.name.as_str();
    let plan = plan_named(name, args)?;
    let trainings = plan.of_kind(CellKind::Train).count();
    let on_cpu = match command.cells.jobs {
        Some(_) => true,
        None => crate::device::select_device(args.device)?.is_flex(),
    };
    let jobs = Jobs::resolve(
        command.cells.jobs.map(|n| n as usize),
        trainings,
        crate::device::flex_threads(),
        on_cpu,
    );
    if jobs.processes <= 1 {
        return Ok(run_named(name, args)?);
    }
    log::info!(
        "{trainings} trainings, {} at a time, {} thread{} each (--jobs)",
        jobs.processes,
        jobs.threads,
        if jobs.threads == 1 { "" } else { "s" }
    );
    // The library opens the output directory (a file in its place is bad input, said once)
    // before it hands the plan over for training.
    let base = cell_command(command, args)?;
    let mut train = |plan: &Plan| {
        let started = std::time::Instant::now();
        local_jobs::run_training_cells(plan, &base, jobs)?;
        Ok(TrainingStage {
            seconds: started.elapsed().as_secs_f64(),
            processes: jobs.processes,
            threads: jobs.threads,
        })
    };
    Ok(run_after_training_named(name, args, &mut train)?)
}

/// Writes the Slurm scripts of `plan` (each cell `base --cell ID`) and, with `--submit`,
/// submits them, printing the job ids and where to follow them.
fn submit_to_slurm(plan: &Plan, base: &[String], cells: &CellFlags) -> Result<(), CliError> {
    let options = match &cells.slurm_opts {
        Some(text) => slurm::parse_options(text)?,
        None => Vec::new(),
    };
    let scripts = slurm::write_scripts(plan, base, &options)?;
    println!(
        "wrote the Slurm scripts of {} cells to {}",
        plan.cells.len(),
        scripts.dir.display()
    );
    if !cells.submit {
        println!("submit them with: bash {}", scripts.submit.display());
        return Ok(());
    }
    let jobs = slurm::submit(&scripts)?;
    println!("training array: job {}", jobs.train);
    if let Some(analysis) = &jobs.analysis {
        println!("analysis array: job {analysis} (after every training succeeded)");
    }
    println!("report: job {} (after the analysis ended)", jobs.report);
    println!("follow: squeue -j {}", jobs.ids());
    println!(
        "        sacct -j {} --format=JobID,JobName,State,Elapsed,ExitCode",
        jobs.ids()
    );
    println!("logs:   {}", plan.out.join("logs").display());
    Ok(())
}

/// Prints the cells of `plan` (of `--plan-stage`, if given) as JSON or one command a line.
fn print_plan(plan: &Plan, base: &[String], cells: &CellFlags) -> Result<(), CliError> {
    let stage = cells
        .plan_stage
        .as_deref()
        .map(str::parse::<CellKind>)
        .transpose()?;
    let chosen: Vec<&Cell> = plan
        .cells
        .iter()
        .filter(|c| stage.is_none_or(|s| c.kind == s))
        .collect();
    let command_of = |cell: &Cell| {
        let mut words = base.to_vec();
        words.extend(["--cell".to_string(), cell.id.clone()]);
        words
            .iter()
            .map(|w| {
                shlex::try_quote(w)
                    .map(|q| q.into_owned())
                    .unwrap_or_else(|_| w.clone())
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    if cells.plan_format == "lines" {
        for cell in chosen {
            println!("{}", command_of(cell));
        }
    } else {
        let document = PlanDocument {
            experiment: &plan.experiment,
            out: &plan.out,
            cells: chosen
                .iter()
                .map(|c| PlannedCell {
                    id: &c.id,
                    kind: c.kind,
                    needs: &c.needs,
                    command: command_of(c),
                    log: plan.log_path(&c.id),
                })
                .collect(),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&document)
                .map_err(|e| CliError::Failure(format!("the plan as JSON: {e}")))?
        );
    }
    Ok(())
}

/// An experiment's example program (`cargo run --example NAME -- FLAGS`): the flags of
/// `repsim experiment NAME`, the same output and the same exit codes.
pub fn example_main(name: &str) -> ExitCode {
    #[derive(Parser)]
    struct ExampleArgs {
        #[command(flatten)]
        flags: ExperimentArgs,
        #[command(flatten)]
        cells: CellFlags,
    }
    debug_assert!(NAMES.contains(&name));
    crate::device::quiet_headless_vulkan();
    crate::allocator::keep_freed_memory();
    crate::logging::init();
    let args = ExampleArgs::parse_from(
        std::iter::once(std::ffi::OsString::from(name)).chain(std::env::args_os().skip(1)),
    );
    let program = std::env::current_exe()
        .map(|exe| vec![exe.display().to_string()])
        .unwrap_or_default();
    super::flags::exit(run(ExperimentCommandArgs {
        name: name.to_string(),
        flags: args.flags,
        cells: args.cells,
        program,
    }))
}
