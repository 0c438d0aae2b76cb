//! A plan of cells ([`super::cells`]) as Slurm batch scripts: one job array for the training
//! cells, one for the analysis cells that starts when every training succeeded
//! (`--dependency=afterok`), and the report job after that. Slurm does all the scheduling;
//! repsim only writes the scripts (and, asked to, submits them with `sbatch`).
//!
//! Every task appends its output to `OUT/logs/CELL.log`; Slurm's own output goes to
//! `OUT/logs/slurm-JOB_TASK.out`. The jobs are `--requeue`: a task preempted or lost with its
//! node is requeued by Slurm and, since cells resume from their newest checkpoint, goes on from
//! there. The report job runs after the analysis array has *ended* (`afterany`), whatever the
//! outcome, so that a failed cell is named in its error with its log instead of leaving the
//! report pending forever; the analysis array is cancelled when a training failed
//! (`--kill-on-invalid-dep=yes`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::cells::{CellKind, Plan};
use crate::error::{Error, Result};

/// The scripts written for a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmScripts {
    /// `OUT/slurm`.
    pub dir: PathBuf,
    /// The training array.
    pub train: PathBuf,
    /// The analysis array (absent when the plan has no analysis cell).
    pub analysis: Option<PathBuf>,
    /// The report job.
    pub report: PathBuf,
    /// `submit.sh`: submits the three with their dependencies, prints the job ids.
    pub submit: PathBuf,
}

/// The job ids of a submitted plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmJobs {
    /// The training array.
    pub train: String,
    /// The analysis array.
    pub analysis: Option<String>,
    /// The report job.
    pub report: String,
}

impl SlurmJobs {
    /// All ids, comma-separated (for `squeue -j` and `sacct -j`).
    pub fn ids(&self) -> String {
        let mut ids = vec![self.train.clone()];
        ids.extend(self.analysis.clone());
        ids.push(self.report.clone());
        ids.join(",")
    }
}

/// Splits `--slurm-opts` into sbatch options; each must start with `-`.
pub fn parse_options(text: &str) -> Result<Vec<String>> {
    let options = shlex::split(text)
        .ok_or_else(|| Error::Input(format!("--slurm-opts {text:?}: unbalanced quotes")))?;
    for option in &options {
        if !option.starts_with('-') {
            return Err(Error::Input(format!(
                "--slurm-opts: {option:?} is not an sbatch option (e.g. \"--partition=gpu --gres=gpu:1\")"
            )));
        }
        if option.contains('\n') {
            return Err(Error::Input(format!(
                "--slurm-opts: {option:?} spans lines"
            )));
        }
    }
    Ok(options)
}

fn quote(word: &str) -> String {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| format!("'{}'", word.replace('\'', "'\\''")))
}

/// The text of one job's script: `cells` as a job array (or one job when `array` is false),
/// each task running `command --cell CELL` with its output appended to `OUT/logs/CELL.log`.
fn script(
    plan: &Plan,
    stage: &str,
    cells: &[&str],
    command: &[String],
    options: &[String],
) -> String {
    let out = plan.out.display().to_string();
    let logs = plan.out.join("logs");
    let mut text = format!(
        "#!/bin/bash\n# repsim {experiment}: the {stage} cells ({count}), one array task each.\n\
         # Written by `--slurm`; submit all three jobs with submit.sh beside it.\n\
         #SBATCH --job-name=repsim-{experiment}-{stage}\n",
        experiment = plan.experiment,
        count = cells.len(),
    );
    text.push_str(&format!("#SBATCH --array=0-{}\n", cells.len() - 1));
    text.push_str("#SBATCH --requeue\n#SBATCH --open-mode=append\n");
    text.push_str(&format!(
        "#SBATCH --output={}\n",
        logs.join("slurm-%A_%a.out").display()
    ));
    for option in options {
        text.push_str(&format!("#SBATCH {option}\n"));
    }
    text.push_str("set -euo pipefail\n");
    text.push_str(&format!(
        "cells=({})\n",
        cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(" ")
    ));
    text.push_str("cell=\"${cells[$SLURM_ARRAY_TASK_ID]}\"\n");
    text.push_str(&format!(
        "log={}/\"$cell.log\"\n",
        quote(&logs.display().to_string())
    ));
    text.push_str(
        "echo \"== $(date -u +%Y-%m-%dT%H:%M:%SZ) cell $cell: job ${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}_${SLURM_ARRAY_TASK_ID}, restart ${SLURM_RESTART_COUNT:-0}, on $(hostname)\" >> \"$log\"\n",
    );
    text.push_str(&format!(
        "cd {}\nexec {} --cell \"$cell\" >> \"$log\" 2>&1\n",
        quote(&out),
        command
            .iter()
            .map(|w| quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    text
}

fn submit_script(scripts: &SlurmScripts) -> String {
    let q = |p: &Path| quote(&p.display().to_string());
    let mut text = String::from(
        "#!/bin/bash\n# Submits the plan's jobs with their dependencies; prints `stage=JOBID` lines.\nset -euo pipefail\n",
    );
    text.push_str(&format!(
        "train=$(sbatch --parsable {})\ntrain=${{train%%;*}}\necho \"train=$train\"\n",
        q(&scripts.train)
    ));
    let after = match &scripts.analysis {
        Some(analysis) => {
            text.push_str(&format!(
                "analysis=$(sbatch --parsable --dependency=afterok:$train --kill-on-invalid-dep=yes {})\nanalysis=${{analysis%%;*}}\necho \"analysis=$analysis\"\n",
                q(analysis)
            ));
            "$analysis"
        }
        None => "$train",
    };
    text.push_str(&format!(
        "report=$(sbatch --parsable --dependency=afterany:{after} {})\nreport=${{report%%;*}}\necho \"report=$report\"\n",
        q(&scripts.report)
    ));
    text
}

/// Writes `OUT/slurm/{train,analysis,report}.sbatch` and `submit.sh` for `plan`, each cell
/// running `command --cell ID` (`command`: the program and the experiment's flags), with the
/// extra sbatch `options` (`--slurm-opts`) in every script; creates `OUT/logs`.
pub fn write_scripts(plan: &Plan, command: &[String], options: &[String]) -> Result<SlurmScripts> {
    let dir = plan.out.join("slurm");
    for d in [&dir, &plan.out.join("logs")] {
        std::fs::create_dir_all(d)
            .map_err(|e| Error::Input(format!("{}: cannot create: {e}", d.display())))?;
    }
    let ids = |kind: CellKind| {
        plan.of_kind(kind)
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
    };
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        repsim_durable::write_bytes(&path, text.as_bytes())?;
        Ok(path)
    };
    let train_cells = ids(CellKind::Train);
    if train_cells.is_empty() {
        return Err(Error::Failure(format!(
            "{} trains nothing: no job array to write",
            plan.experiment
        )));
    }
    let train = write(
        "train.sbatch",
        &script(plan, "train", &train_cells, command, options),
    )?;
    let analysis_cells = ids(CellKind::Analysis);
    let analysis = if analysis_cells.is_empty() {
        None
    } else {
        Some(write(
            "analysis.sbatch",
            &script(plan, "analysis", &analysis_cells, command, options),
        )?)
    };
    let report = write(
        "report.sbatch",
        &script(plan, "report", &ids(CellKind::Report), command, options),
    )?;
    let mut scripts = SlurmScripts {
        dir: dir.clone(),
        train,
        analysis,
        report,
        submit: dir.join("submit.sh"),
    };
    scripts.submit = write("submit.sh", &submit_script(&scripts))?;
    Ok(scripts)
}

/// Submits the scripts with `sbatch` (through `submit.sh`) and returns the job ids.
pub fn submit(scripts: &SlurmScripts) -> Result<SlurmJobs> {
    let output = Command::new("bash")
        .arg(&scripts.submit)
        .output()
        .map_err(|e| Error::Failure(format!("{}: cannot run: {e}", scripts.submit.display())))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(Error::Failure(format!(
            "sbatch failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            if stdout.trim().is_empty() {
                String::new()
            } else {
                format!(" (submitted before the failure: {})", stdout.trim())
            }
        )));
    }
    let id = |stage: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{stage}=")))
            .map(str::to_string)
    };
    let missing = || Error::Failure(format!("sbatch printed no job id: {stdout}"));
    Ok(SlurmJobs {
        train: id("train").ok_or_else(missing)?,
        analysis: id("analysis"),
        report: id("report").ok_or_else(missing)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::Cell;

    fn plan() -> Plan {
        let cell = |id: &str, kind| Cell {
            id: id.into(),
            kind,
            needs: vec![],
            work: 0,
        };
        Plan {
            experiment: "demo".into(),
            out: PathBuf::from("/tmp/demo out"),
            cells: vec![
                cell("train-a", CellKind::Train),
                cell("train-b", CellKind::Train),
                cell("analysis-all", CellKind::Analysis),
                cell("report", CellKind::Report),
            ],
        }
    }

    #[test]
    fn options_must_be_sbatch_options() {
        assert_eq!(
            parse_options("--partition=gpu --gres=gpu:1").unwrap(),
            vec!["--partition=gpu", "--gres=gpu:1"]
        );
        assert!(parse_options("gpu").is_err());
        assert!(parse_options("--comment='open").is_err());
    }

    #[test]
    fn a_script_maps_array_tasks_to_cells_and_quotes_paths() {
        let text = script(
            &plan(),
            "train",
            &["train-a", "train-b"],
            &["/bin/repsim".into(), "--out".into(), "/tmp/demo out".into()],
            &["--time=10".into()],
        );
        assert!(text.contains("#SBATCH --array=0-1\n"), "{text}");
        assert!(text.contains("#SBATCH --requeue\n"));
        assert!(text.contains("#SBATCH --time=10\n"));
        assert!(text.contains("cells=(train-a train-b)\n"));
        assert!(text.contains("exec /bin/repsim --out '/tmp/demo out' --cell \"$cell\""));
    }

    #[test]
    fn the_report_waits_for_the_analysis_to_end() {
        let scripts = SlurmScripts {
            dir: "/o/slurm".into(),
            train: "/o/slurm/train.sbatch".into(),
            analysis: Some("/o/slurm/analysis.sbatch".into()),
            report: "/o/slurm/report.sbatch".into(),
            submit: "/o/slurm/submit.sh".into(),
        };
        let text = submit_script(&scripts);
        assert!(text.contains("--dependency=afterok:$train --kill-on-invalid-dep=yes"));
        assert!(text.contains("--dependency=afterany:$analysis"));
    }
}
