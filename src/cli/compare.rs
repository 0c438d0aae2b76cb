//! `repsim compare A B`: layer x layer similarity of two activation files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use repsim_similarity::measure::check_batch_size;
use repsim_similarity::{
    assess, read_activations, similarity_matrices, ConvMode, HostLayer, Layer, Measure,
    PwccaConvention, RdmComparison, RdmKind, ResultsFile, ResultsMeta, SignificanceOptions,
    SimilarityMatrix,
};

use burn::data::dataset::Dataset;
use repsim_data::ImageBatcher;
use repsim_model::AnyModel;
use repsim_train::probing::{comparison_pass, LayersOf};

use super::activations::ProbeRun;
use super::flags::parse_device;
use super::table;
use crate::device::{select_device, DeviceChoice};
use crate::error::Error as CliError;

/// Arguments of `repsim compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Activations of model A: a .npy file, a .npz archive (one array per layer) or a
    /// directory of .npy files. Examples on dim 0, in the same order as B. Or a run directory
    /// of `repsim train` (config.json, model.bpk): its model is probed on the first --count
    /// test images of the data it was trained on.
    pub a: PathBuf,
    /// Activations of model B (may be the same as A), or a second run directory. A and B may
    /// also be two weight files (.bpk) of the architecture given by --model, --depth, ...,
    /// probed on the first --count test images of --data.
    pub b: PathBuf,
    /// Run directories: test images probed (the first N of the test split, both models).
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Run directories and weight files: which layers (blocks, all, or names=a,b,c).
    #[arg(long, default_value = "blocks")]
    pub probe: repsim_model::Probe,
    /// Weight files (.bpk from `repsim train` or `save_weights`): the architecture of both.
    #[command(flatten)]
    pub model: super::describe::ModelArgs,
    /// Weight files: the data whose first --count test images both models see.
    #[command(flatten)]
    pub data: super::data::DataArgs,
    /// Metrics, comma-separated: linear_cka, linear_cka_debiased, rbf_cka, rbf_cka_debiased,
    /// minibatch_cka, cca, svcca, pwcca, procrustes, mutual_knn, cknna, rsa, shape_angular.
    /// Each may carry its parameters, NAME:KEY=VALUE:...: rbf_cka:threshold=0.5, svcca:dims=20,
    /// minibatch_cka:batch_size=64, cknna:k=20:normalize_rows=true (these win over the flags
    /// below, which set every listed measure that has the parameter).
    #[arg(long, value_delimiter = ',', default_value = "linear_cka")]
    pub metric: Vec<String>,
    /// Batch size of minibatch_cka (examples left over after the last full batch are dropped).
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// RBF bandwidth: sigma = T * sqrt(median squared distance).
    #[arg(long, default_value_t = 1.0)]
    pub rbf_threshold: f64,
    /// SVCCA: keep the top singular directions explaining this fraction of the variance.
    #[arg(long, default_value_t = 0.99, conflicts_with = "svd_dims")]
    pub svd_keep: f64,
    /// SVCCA: keep this many top singular directions instead.
    #[arg(long)]
    pub svd_dims: Option<usize>,
    /// PWCCA weighting: google (the SVCCA authors' code) or textbook.
    #[arg(long, default_value = "google")]
    pub pwcca_convention: PwccaConvention,
    /// mutual_knn and cknna: neighbours per example.
    #[arg(long, default_value_t = 10)]
    pub knn_k: usize,
    /// cknna: divide rows by their L2 norm first (the authors' pipeline, and mutual_knn's
    /// convention): true (the default) or false, the features as given.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub cknna_normalize: bool,
    /// cknna: the biased HSIC (the self-pair allowed as a neighbour) instead of the unbiased.
    #[arg(long)]
    pub cknna_biased: bool,
    /// rsa: the dissimilarity, correlation (1 - Pearson r of two examples), euclidean (the
    /// plain distance) or mean_squared_difference (|x_i - x_j|^2 / D: rsatoolbox's "euclidean").
    #[arg(long, default_value = "correlation")]
    pub rdm: RdmKind,
    /// rsa: how two RDMs are compared: spearman, pearson, cosine (rsatoolbox's default), rho_a
    /// or tau_a (Nili et al. 2014; they differ from spearman only where there are ties).
    #[arg(long, default_value = "spearman")]
    pub rsa_compare: RdmComparison,
    /// Clip outlying activations first, as platonic-rep prepares features: each layer's
    /// values clamped at the mean over examples of the Q-quantile of their absolute values
    /// (platonic-rep uses 0.95). Needs every example at once (not with --state).
    #[arg(long, value_name = "Q")]
    pub clip_outliers: Option<f64>,
    /// shape_angular: alpha in [0, 1] (1: no whitening, Procrustes' angle; 0: CCA's).
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// Permutation test: P draws of B's examples (the same draws for every cell), giving each
    /// cell a p-value, the null's mean and 95th percentile (`*` marks p < 0.05).
    #[arg(long, default_value_t = 0)]
    pub permutations: usize,
    /// Bootstrap: B replicates, giving each cell a --ci interval (minibatch_cka resamples
    /// batches; the other measures half-samples of the examples, without copies).
    #[arg(long, default_value_t = 0)]
    pub bootstrap: usize,
    /// Coverage of the bootstrap interval.
    #[arg(long, default_value_t = 0.95)]
    pub ci: f64,
    /// Seed of the permutations and the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// With --permutations: also report each value minus its null's mean.
    #[arg(long)]
    pub calibrated: bool,
    /// Conv layers (N, C, H, W): flatten, spatial (each position a datapoint; spatial=CAP
    /// caps the points) or pool=K (average-pool to K x K first).
    #[arg(long, default_value = "flatten")]
    pub conv: ConvMode,
    /// Device: auto, flex, wgpu or vulkan.
    #[arg(long, env = "REPSIM_DEVICE", default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
    /// Compute shard I of N (0-based) of a minibatch_cka comparison: a contiguous range of
    /// whole minibatches, read from the files' own rows. Needs --state.
    #[arg(long, requires = "state", allow_hyphen_values = true)]
    pub shard: Option<repsim_similarity::shard::Shard>,
    /// Write the shard's sufficient statistics to this state file (for `repsim merge`)
    /// instead of a matrix.
    #[arg(long, conflicts_with_all = ["json", "plot"])]
    pub state: Option<PathBuf>,
    /// Write all results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the results to this PNG or SVG: a heatmap, or a grid for several metrics (one
    /// FILE-METRIC image each when distances and similarities are mixed, or with --separate).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub style: super::plot::PlotStyle,
}

impl CompareArgs {
    /// The measures of `--metric`, each with the flags' parameters where it has them and its
    /// own `:key=value` pairs over those; a bad flag is named, a measure named twice refused.
    fn measures(&self) -> Result<Vec<Measure>, CliError> {
        let reduction = match self.svd_dims {
            Some(k) => ("dims", k.to_string()),
            None => ("keep", self.svd_keep.to_string()),
        };
        let flags = [
            ("batch_size", self.batch_size.to_string()),
            ("threshold", self.rbf_threshold.to_string()),
            reduction,
            ("convention", self.pwcca_convention.to_string()),
            ("k", self.knn_k.to_string()),
            ("normalize_rows", self.cknna_normalize.to_string()),
            ("rdm", self.rdm.to_string()),
            ("compare", self.rsa_compare.to_string()),
            ("alpha", self.alpha.to_string()),
        ];
        let flag_of = |parameter: &str| match parameter {
            "batch_size" => "--batch-size",
            "threshold" => "--rbf-threshold",
            "SVD keep fraction" => "--svd-keep",
            "SVD dimensions" => "--svd-dims",
            "k" => "--knn-k",
            "alpha" => "--alpha",
            _ => "--metric",
        };
        let mut measures: Vec<Measure> = Vec::new();
        for spec in &self.metric {
            let name = spec.trim().split(':').next().unwrap_or_default();
            let mut defaults = flags.to_vec();
            if name == "cknna" && self.cknna_biased {
                defaults.push(("estimator", "biased".into()));
            }
            // The flags alone first, so that a bad flag is named as the flag.
            Measure::from_spec(name, &defaults)
                .map_err(|e| CliError::Input(format!("{}: {e}", flag_of(e.name))))?;
            let measure = Measure::from_spec(spec, &defaults)?;
            if measures.iter().any(|m| m.name() == measure.name()) {
                return Err(CliError::Input(format!(
                    "--metric names {} twice",
                    measure.name()
                )));
            }
            measures.push(measure);
        }
        Ok(measures)
    }
}

/// Runs the comparison: checks the flags and the outputs, plans it (streamed from the files'
/// rows, or in memory), and runs the plan.
pub fn run(args: CompareArgs) -> Result<(), CliError> {
    let measures = args.measures()?;
    args.check_outputs()?;
    let significance = args.significance()?;
    let selected = select_device(args.device).map_err(|e| CliError::Input(e.0))?;
    status!("device: {selected}");
    match args.plan(&measures, &significance)? {
        Plan::Streamed => streamed(&args, &measures, args.conv, &selected),
        Plan::InMemory => in_memory(&args, &measures, &significance, &selected),
        Plan::Probed => probed(&args, &measures, &selected),
    }
}

/// How a comparison runs.
enum Plan {
    /// One batch of the files' rows at a time (bounded memory), or one shard (`--state`).
    Streamed,
    /// Every example of every layer at once on the device.
    InMemory,
    /// Two models probed batch by batch into the comparison driver: only the measures that
    /// need every example gather them, on the device.
    Probed,
}

impl CompareArgs {
    /// Refuses outputs that would clobber an input or cannot be written, before any work.
    fn check_outputs(&self) -> Result<(), CliError> {
        if let Some(json) = &self.json {
            super::output::check_output(json, "--json", &["json"], &[&self.a, &self.b])?;
        }
        if let Some(plot) = &self.plot {
            repsim_viz::check_output_path(plot)?;
            super::output::check_output(plot, "--plot", &[], &[&self.a, &self.b])?;
        }
        Ok(())
    }

    /// The permutation and bootstrap options, checked.
    fn significance(&self) -> Result<SignificanceOptions, CliError> {
        let significance = SignificanceOptions {
            permutations: self.permutations,
            bootstrap: self.bootstrap,
            confidence: self.ci,
            seed: self.seed,
            calibrated: self.calibrated,
        };
        significance.check()?;
        Ok(significance)
    }

    /// Streamed when sharding (`--state`), or when activation files are compared by minibatch
    /// CKA alone with nothing that needs every example at once; models (weights, runs) probed
    /// batch by batch into the driver unless something needs every example at once; in memory
    /// otherwise.
    fn plan(
        &self,
        measures: &[Measure],
        significance: &SignificanceOptions,
    ) -> Result<Plan, CliError> {
        let files = ![&self.a, &self.b]
            .iter()
            .any(|p| is_weights(p) || is_run_dir(p));
        if self.state.is_some() {
            if self.clip_outliers.is_some() {
                return Err(CliError::Input(
                    "--clip-outliers clamps at a threshold over every example, which a shard does not see: leave out --state".into(),
                ));
            }
            if significance.any() {
                return Err(CliError::Input(
                    "--permutations and --bootstrap need the whole comparison, not a shard's sums: leave out --state".into(),
                ));
            }
            repsim_similarity::shard::check_shardable(measures)?;
            if !files {
                return Err(CliError::Input(
                    "--state shards activation files (.npy, .npz, a directory of .npy): save the activations first (`repsim activations`)".into(),
                ));
            }
            return Ok(Plan::Streamed);
        }
        let only_minibatch = measures
            .iter()
            .all(|m| matches!(m, Measure::MinibatchCka { .. }));
        // Significance, outlier clipping and positions as examples need every example's
        // layers at once, gathered before any measure.
        let per_batch = !significance.any()
            && self.clip_outliers.is_none()
            && !matches!(self.conv, ConvMode::SpatialAsSamples { .. });
        Ok(match (files, per_batch) {
            (true, true) if only_minibatch => Plan::Streamed,
            (false, true) => Plan::Probed,
            _ => Plan::InMemory,
        })
    }

    /// What every results file of this comparison says about it.
    fn meta(
        &self,
        selected: &crate::device::SelectedDevice,
        n: usize,
        measures: &[Measure],
    ) -> ResultsMeta {
        ResultsMeta {
            repsim_version: Some(env!("CARGO_PKG_VERSION").into()),
            a: Some(self.a.display().to_string()),
            b: Some(self.b.display().to_string()),
            device: Some(selected.to_string()),
            n_examples: Some(n),
            metrics: measures.iter().map(|m| m.name().to_string()).collect(),
            batch_size: Some(self.batch_size),
            conv: Some(self.conv.to_string()),
            precision: Some("f32".into()),
            clip_outliers: self.clip_outliers,
            ..ResultsMeta::default()
        }
    }
}

/// Both sides' layers on the device (conv layers shaped by `--conv`), each with its shape as
/// stored or probed: A, and B unless it is A.
struct Inputs {
    a: Vec<(Layer, Vec<usize>)>,
    b: Option<Vec<(Layer, Vec<usize>)>>,
}

impl Inputs {
    /// Reads A and B: two weight files or run directories probed on `device` (their layers
    /// stay there), or two activation files (read on two threads: reading is bound by memory
    /// copies and checksums; then uploaded). Refuses sides of different example counts.
    fn resolve(args: &CompareArgs, device: &burn::tensor::Device) -> Result<Self, CliError> {
        let started = Instant::now();
        let same_input = same_file(&args.a, &args.b);
        let (a, b) = if is_weights(&args.a)
            || is_weights(&args.b)
            || is_run_dir(&args.a)
            || is_run_dir(&args.b)
        {
            probe_models(args, device, GatherLayers)?
        } else {
            let (a, b) = std::thread::scope(|scope| {
                let b = (!same_input).then(|| scope.spawn(|| load(&args.b)));
                let a = load(&args.a);
                let b = b.map(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(CliError::Failure(format!(
                            "reading {} failed",
                            args.b.display()
                        )))
                    })
                });
                (a, b)
            });
            let upload = |layers: Vec<HostLayer>| -> Result<Vec<(Layer, Vec<usize>)>, CliError> {
                layers
                    .into_iter()
                    .map(|l| {
                        let shape = l.shape.clone();
                        Ok((l.into_layer_with(device, args.conv)?, shape))
                    })
                    .collect()
            };
            (upload(a?)?, b.transpose()?.map(upload).transpose()?)
        };
        let n = a[0].1[0];
        if let Some(b) = &b {
            if b[0].1[0] != n {
                return Err(CliError::Input(format!(
                    "{} holds {n} examples but {} holds {}: both must hold the same examples in the same order",
                    args.a.display(),
                    args.b.display(),
                    b[0].1[0]
                )));
            }
        }
        let describe = |path: &Path, layers: &[(Layer, Vec<usize>)]| {
            let count = layers.len();
            format!(
                "{} ({count} layer{})",
                path.display(),
                if count == 1 { "" } else { "s" }
            )
        };
        status!(
            "loaded {}{} with {n} examples in {:.2} s",
            describe(&args.a, &a),
            b.as_ref()
                .map_or(String::new(), |b| format!(" and {}", describe(&args.b, b))),
            started.elapsed().as_secs_f64()
        );
        Ok(Inputs { a, b })
    }

    fn num_examples(&self) -> usize {
        self.a[0].1[0]
    }

    /// Layer names and shapes of (A, B), for the results file.
    fn names_and_shapes(&self) -> [(Vec<String>, Vec<Vec<usize>>); 2] {
        let of = |layers: &[(Layer, Vec<usize>)]| {
            (
                layers.iter().map(|(l, _)| l.name.clone()).collect(),
                layers.iter().map(|(_, shape)| shape.clone()).collect(),
            )
        };
        let a = of(&self.a);
        let b = self.b.as_deref().map_or_else(|| a.clone(), of);
        [a, b]
    }
}

/// The comparison with every example on the device: inputs resolved, uploaded (conv layers
/// shaped, outliers clipped), every measure computed (the CCA family sharing one pass), the
/// significance assessed, and the results written.
fn in_memory(
    args: &CompareArgs,
    measures: &[Measure],
    significance: &SignificanceOptions,
    selected: &crate::device::SelectedDevice,
) -> Result<(), CliError> {
    let inputs = Inputs::resolve(args, &selected.device)?;
    let n = inputs.num_examples();
    for measure in measures {
        if n < measure.min_examples() {
            return Err(CliError::Input(format!(
                "{measure} needs at least {} examples, the inputs hold {n}",
                measure.min_examples()
            )));
        }
        if let Measure::MinibatchCka { batch_size } = measure {
            check_batch_size(*batch_size, n)?;
        }
    }
    let [(layers_a_names, shapes_a), (layers_b_names, shapes_b)] = inputs.names_and_shapes();
    let clip = |layers: Vec<(Layer, Vec<usize>)>| -> Result<Vec<Layer>, CliError> {
        layers
            .into_iter()
            .map(|(layer, _)| {
                Ok(match args.clip_outliers {
                    Some(q) => repsim_similarity::outliers::clip_outliers(&layer, q)?,
                    None => layer,
                })
            })
            .collect()
    };
    let layers_a = clip(inputs.a)?;
    let layers_b = inputs.b.map(clip).transpose()?;
    let layers_b_ref: &[Layer] = layers_b.as_deref().unwrap_or(&layers_a);
    if args.conv != ConvMode::Flatten {
        status!("conv layers: {}", args.conv);
    }
    if let Some(q) = args.clip_outliers {
        status!("outliers clipped at each layer's mean {q}-quantile of |activation|");
    }
    let names = measures
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ");
    let t = Instant::now();
    let spinner = super::progress::spinner(&format!(
        "computing {names} on {} x {} layers",
        layers_a.len(),
        layers_b_ref.len()
    ));
    let results = similarity_matrices(measures, &layers_a, layers_b_ref);
    spinner.finish_and_clear();
    let mut results = results?;
    status!("{names}: {:.3} s", t.elapsed().as_secs_f64());
    if significance.any() {
        for matrix in results.iter_mut() {
            let t = Instant::now();
            let what = format!(
                "{}: {}",
                matrix.measure,
                describe_significance(significance)
            );
            let spinner = super::progress::spinner(&what);
            let assessed = assess(matrix, &layers_a, layers_b_ref, significance);
            spinner.finish_and_clear();
            assessed?;
            status!("{what} in {:.3} s", t.elapsed().as_secs_f64());
        }
    }
    let meta = ResultsMeta {
        rbf_threshold: Some(args.rbf_threshold),
        layers_a: Some(layers_a_names),
        shapes_a: Some(shapes_a),
        layers_b: Some(layers_b_names),
        shapes_b: Some(shapes_b),
        ..args.meta(selected, n, measures)
    };
    args.report(results, meta)
}

/// Two models (weight files or runs) probed one batch at a time into the comparison driver,
/// which gathers layers on the device only for the measures that need every example.
fn probed(
    args: &CompareArgs,
    measures: &[Measure],
    selected: &crate::device::SelectedDevice,
) -> Result<(), CliError> {
    let started = Instant::now();
    let (results, [(layers_a, shapes_a), (layers_b, shapes_b)]) =
        probe_models(args, &selected.device, CompareLayers(measures))?;
    let names = measures
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ");
    status!(
        "{names} on {} x {} layers of {} examples, probed batch by batch: {:.3} s",
        layers_a.len(),
        layers_b.len(),
        args.count,
        started.elapsed().as_secs_f64()
    );
    let meta = ResultsMeta {
        rbf_threshold: Some(args.rbf_threshold),
        layers_a: Some(layers_a),
        shapes_a: Some(shapes_a),
        layers_b: Some(layers_b),
        shapes_b: Some(shapes_b),
        ..args.meta(selected, args.count, measures)
    };
    args.report(results, meta)
}

/// "1000 permutations, 200 bootstrap replicates".
fn describe_significance(options: &SignificanceOptions) -> String {
    let mut parts = Vec::new();
    if options.permutations > 0 {
        parts.push(format!("{} permutations", options.permutations));
    }
    if options.bootstrap > 0 {
        parts.push(format!("{} bootstrap replicates", options.bootstrap));
    }
    parts.join(", ")
}

impl CompareArgs {
    /// The results printed and written to `--json` and `--plot`, titled with A and B.
    fn report(
        &self,
        results: Vec<repsim_similarity::SimilarityMatrix>,
        meta: ResultsMeta,
    ) -> Result<(), CliError> {
        let titles = (
            Some(self.a.display().to_string()),
            Some(self.b.display().to_string()),
        );
        report(
            results,
            meta,
            self.json.as_deref(),
            self.plot.as_deref(),
            &self.style,
            titles,
        )
    }
}

/// Prints each matrix (and its warnings), writes `--json` (a [`ResultsFile`]) and `--plot`.
pub fn report(
    results: Vec<repsim_similarity::SimilarityMatrix>,
    meta: ResultsMeta,
    json_path: Option<&Path>,
    plot: Option<&Path>,
    style: &super::plot::PlotStyle,
    titles: (Option<String>, Option<String>),
) -> Result<(), CliError> {
    for matrix in &results {
        for warning in &matrix.warnings {
            eprintln!("warning: {}: {warning}", matrix.measure);
        }
        print!("{}", table::render(matrix));
    }
    let file = ResultsFile { meta, results };
    if let Some(path) = json_path {
        let document = serde_json::to_value(&file)
            .map_err(|e| CliError::Failure(format!("the results as JSON: {e}")))?;
        super::output::write_json(path, &document)?;
        status!("wrote {}", path.display());
    }
    if let Some(path) = plot {
        for written in super::plot::draw_results(&file.results, path, style, false, titles)? {
            status!("wrote {}", written.display());
        }
    }
    Ok(())
}

/// Minibatch CKA and the feature-space measures of two activation files streamed one batch of
/// rows at a time (bounded memory, any file size), or one shard of such a comparison written as
/// a state file (`--state`).
fn streamed(
    args: &CompareArgs,
    measures: &[Measure],
    conv: ConvMode,
    selected: &crate::device::SelectedDevice,
) -> Result<(), CliError> {
    use repsim_similarity::shard::{
        batch_count, check_chunk_size, merge_states, CompareState, InputDescription, Shard,
        StateParameters, STATE_FORMAT, STATE_VERSION,
    };
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    if let Some(state) = &args.state {
        super::output::check_output(state, "--state", &[], &[&args.a, &args.b])?;
    }
    let (a, b) = open_row_sources(args)?;
    let n = a.num_examples();
    // The files are read in minibatch CKA's batches, or in chunks of --batch-size.
    let chunk = measures
        .iter()
        .find_map(|m| match m {
            Measure::MinibatchCka { batch_size } => Some(*batch_size),
            _ => None,
        })
        .unwrap_or(args.batch_size);
    check_chunk_size(measures, chunk, n)?;
    let total = batch_count(n, chunk);
    let batches = shard.batches(total);
    let pass = Pass {
        measures,
        chunk,
        batches: batches.clone(),
        total,
        conv,
    };
    let sums = pass.run(&a, b.as_ref(), &selected.device)?;
    let parameters = StateParameters {
        batch_size: chunk,
        conv: conv.to_string(),
    };
    let covariance = sums
        .covariance
        .as_ref()
        .map(|c| c.state())
        .transpose()?
        .flatten();
    let state = CompareState {
        format: STATE_FORMAT.into(),
        version: STATE_VERSION,
        repsim_version: env!("CARGO_PKG_VERSION").into(),
        measures: measures.to_vec(),
        parameters,
        a: InputDescription::of(&a, &sums.batch_hashes_a),
        b: b.as_ref()
            .map(|b| InputDescription::of(b, &sums.batch_hashes_b)),
        n_examples: n,
        total_batches: total,
        shard,
        batches,
        minibatch: sums.minibatch.as_ref().and_then(|m| m.state().cloned()),
        covariance,
        checksum: String::new(),
    };
    if let Some(path) = &args.state {
        return write_state(path, state);
    }
    // The whole pass is one shard: merged as `repsim merge` merges shards.
    let whole = merge_states(&[(args.a.clone(), state)])?;
    let results = whole.matrices(&selected.device)?;
    let b_side = b.as_ref().unwrap_or(&a);
    let meta = ResultsMeta {
        batch_size: Some(chunk),
        layers_a: Some(a.names()),
        shapes_a: Some(a.shapes()),
        layers_b: Some(b_side.names()),
        shapes_b: Some(b_side.shapes()),
        streamed: Some(true),
        inputs: Some(identity_json(&whole.identity)),
        ..args.meta(selected, n, measures)
    };
    args.report(results, meta)
}

/// Seals a shard's state (its checksum) and writes it.
fn write_state(
    path: &Path,
    mut state: repsim_similarity::shard::CompareState,
) -> Result<(), CliError> {
    state.seal()?;
    let value = serde_json::to_value(&state)
        .map_err(|e| CliError::Failure(format!("the state as JSON: {e}")))?;
    super::output::write_json(path, &value)?;
    status!("wrote {} (shard {})", path.display(), state.shard);
    Ok(())
}

/// A and B's row sources (B `None` when it is A), refused when their example counts differ.
fn open_row_sources(
    args: &CompareArgs,
) -> Result<
    (
        repsim_similarity::RowSource,
        Option<repsim_similarity::RowSource>,
    ),
    CliError,
> {
    use repsim_similarity::RowSource;
    let a = RowSource::open(&args.a)?;
    let b = if same_file(&args.a, &args.b) {
        None
    } else {
        Some(RowSource::open(&args.b)?)
    };
    let n = a.num_examples();
    if let Some(b) = &b {
        if b.num_examples() != n {
            return Err(CliError::Input(format!(
                "{} holds {n} examples but {} holds {}: both must hold the same examples in the same order",
                args.a.display(),
                args.b.display(),
                b.num_examples()
            )));
        }
    }
    Ok((a, b))
}

/// One streamed pass: the measures' sums over some minibatches (chunks) of the files.
struct Pass<'a> {
    measures: &'a [Measure],
    chunk: usize,
    batches: std::ops::Range<usize>,
    total: usize,
    conv: ConvMode,
}

impl Pass<'_> {
    /// Reads the pass's minibatches of `a` and `b` one at a time, with a spinner, and says how
    /// long it took.
    fn run(
        &self,
        a: &repsim_similarity::RowSource,
        b: Option<&repsim_similarity::RowSource>,
        device: &burn::tensor::Device,
    ) -> Result<repsim_similarity::shard::StreamedSums, CliError> {
        let names = self
            .measures
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ");
        let (start, end, total) = (self.batches.start, self.batches.end, self.total);
        let started = Instant::now();
        let spinner = super::progress::spinner(&format!(
            "{names}, streamed: minibatches {start}..{end} of {total} ({} x {} layers)",
            a.names().len(),
            b.map_or(a.names().len(), |b| b.names().len())
        ));
        let sums = repsim_similarity::shard::stream_statistics(
            a,
            b,
            self.measures,
            self.chunk,
            self.batches.clone(),
            self.conv,
            device,
        );
        spinner.finish_and_clear();
        let sums = sums?;
        status!(
            "{names} over minibatches {start}..{end} of {total} ({} examples each), read from the files' rows: {:.3} s",
            self.chunk,
            started.elapsed().as_secs_f64()
        );
        Ok(sums)
    }
}

fn load(path: &Path) -> Result<Vec<HostLayer>, CliError> {
    Ok(read_activations(path)?)
}

/// A model's probed layers on the device, each with its shape before `--conv` shaped it.
type ProbedLayers = Vec<(Layer, Vec<usize>)>;

/// Whether `path` names a burnpack weight file.
fn is_weights(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("bpk")
}

/// The two models of `args.a` and `args.b` (two weight files of the architecture of
/// `args.model` on the first `args.count` test images of `args.data`, or two runs' final
/// models on the first `args.count` images of their common test split), each probed on the
/// device with the images normalised as it was trained, and put to `what`.
fn probe_models<U: ProbeUse>(
    args: &CompareArgs,
    device: &burn::tensor::Device,
    what: U,
) -> Result<U::Output, CliError> {
    if is_weights(&args.a) || is_weights(&args.b) {
        probe_weight_files(args, device, what)
    } else {
        probe_runs(args, device, what)
    }
}

/// What a comparison does with its two probed models: gather their layers
/// ([`GatherLayers`]) or compare them batch by batch ([`CompareLayers`]).
trait ProbeUse {
    /// What it gives.
    type Output;
    /// Examples per probe batch.
    fn batch_size(&self) -> usize;
    /// Its work on probes `a` and `b` (`None`: B is A).
    fn with<D: Dataset<repsim_data::ImageItem>>(
        self,
        a: &ProbeRun<'_, D>,
        b: Option<&ProbeRun<'_, D>>,
        conv: ConvMode,
    ) -> Result<Self::Output, CliError>;
}

/// Every layer of both models gathered on the device (for what needs every example at once),
/// each with its shape before `--conv`: A's, and B's unless B is A.
struct GatherLayers;

impl ProbeUse for GatherLayers {
    type Output = (ProbedLayers, Option<ProbedLayers>);

    fn batch_size(&self) -> usize {
        100
    }

    fn with<D: Dataset<repsim_data::ImageItem>>(
        self,
        a: &ProbeRun<'_, D>,
        b: Option<&ProbeRun<'_, D>>,
        conv: ConvMode,
    ) -> Result<Self::Output, CliError> {
        let time = repsim_model::TimeReduction::Last;
        Ok((
            a.device_layers(time, conv)?,
            b.map(|b| b.device_layers(time, conv)).transpose()?,
        ))
    }
}

/// The measures fed one probe batch at a time to the comparison driver: the matrices, and
/// the layers' names and shapes (A, B).
struct CompareLayers<'m>(&'m [Measure]);

/// Names and shapes of A's layers and of B's.
type NamesAndShapes = [(Vec<String>, Vec<Vec<usize>>); 2];

impl ProbeUse for CompareLayers<'_> {
    type Output = (Vec<SimilarityMatrix>, NamesAndShapes);

    /// Minibatch CKA's batch size when it is measured (its batches are the probe's), 100
    /// otherwise.
    fn batch_size(&self) -> usize {
        self.0
            .iter()
            .find_map(|m| match m {
                Measure::MinibatchCka { batch_size } => Some(*batch_size),
                _ => None,
            })
            .unwrap_or(100)
    }

    fn with<D: Dataset<repsim_data::ImageItem>>(
        self,
        a: &ProbeRun<'_, D>,
        b: Option<&ProbeRun<'_, D>>,
        conv: ConvMode,
    ) -> Result<Self::Output, CliError> {
        compare_probes(a, b, self.0, conv)
    }
}

/// `measures` of `a`'s layers against `b`'s, one probe batch at a time through the
/// comparison driver: only measures that need every example gather them (on the device).
fn compare_probes<D: Dataset<repsim_data::ImageItem>>(
    a: &ProbeRun<'_, D>,
    b: Option<&ProbeRun<'_, D>>,
    measures: &[Measure],
    conv: ConvMode,
) -> Result<(Vec<SimilarityMatrix>, NamesAndShapes), CliError> {
    let time = repsim_model::TimeReduction::Last;
    let bar = super::progress::bar(a.count as u64, "probing and comparing");
    let mut shapes: [Vec<(String, Vec<usize>)>; 2] = [Vec::new(), Vec::new()];
    let [shapes_a, shapes_b] = &mut shapes;
    let side = |run: &ProbeRun<'_, D>, range: std::ops::Range<usize>, shapes: &mut Vec<_>| {
        let layers = run.batch_layers(range, time, conv)?;
        if shapes.is_empty() {
            *shapes = layers
                .iter()
                .map(|(l, shape): &(Layer, Vec<usize>)| (l.name.clone(), shape.clone()))
                .collect();
        }
        Ok::<_, CliError>(layers.into_iter().map(|(l, _)| l).collect::<Vec<_>>())
    };
    let mut first = |range: std::ops::Range<usize>| {
        bar.set_position(range.end as u64);
        side(a, range, shapes_a)
    };
    let mut second = b.map(|b| move |range| side(b, range, shapes_b));
    let mut others: Vec<&mut LayersOf<'_, std::ops::Range<usize>, CliError>> = second
        .as_mut()
        .map(|f| f as &mut LayersOf<'_, std::ops::Range<usize>, CliError>)
        .into_iter()
        .collect();
    let batches = a.batch_ranges().map(Ok);
    let mut results = comparison_pass(
        batches,
        &mut first,
        &mut others,
        measures,
        repsim_similarity::ShortLastBatch::LeaveOut,
    )?;
    bar.finish_and_clear();
    drop(others);
    drop((first, second));
    let matrices = results.remove(0).matrices;
    let of = |shapes: &[(String, Vec<usize>)]| {
        (
            shapes.iter().map(|(name, _)| name.clone()).collect(),
            shapes
                .iter()
                .map(|(_, shape)| {
                    let mut shape = shape.clone();
                    shape[0] = a.count;
                    shape
                })
                .collect(),
        )
    };
    let [shapes_a, shapes_b] = &shapes;
    let a_side = of(shapes_a);
    let b_side = if b.is_some() {
        of(shapes_b)
    } else {
        a_side.clone()
    };
    Ok((matrices, [a_side, b_side]))
}

/// Two weight files of the architecture of `args.model` on the first `args.count` test
/// images of `args.data`.
fn probe_weight_files<U: ProbeUse>(
    args: &CompareArgs,
    device: &burn::tensor::Device,
    what: U,
) -> Result<U::Output, CliError> {
    for path in [&args.a, &args.b] {
        if !is_weights(path) {
            return Err(CliError::Input(format!(
                "{} is not a weight file (.bpk): compare two weight files, two run directories, or two activation files",
                path.display()
            )));
        }
        if !path.is_file() {
            return Err(CliError::Input(format!("{}: no such file", path.display())));
        }
    }
    let spec = args.model.spec()?;
    let dataset = args.data.open(repsim_data::Split::Test)?;
    if args.count < 2 || args.count > Dataset::len(&dataset) {
        return Err(CliError::Input(format!(
            "--count must be 2 to {} (the test split of {}), got {}",
            Dataset::len(&dataset),
            args.data.data,
            args.count
        )));
    }
    status!(
        "probing {} and {} ({}) on the first {} test images of {}",
        args.a.display(),
        args.b.display(),
        spec.name(),
        args.count,
        args.data.data
    );
    // Each model sees the images normalised as it was trained (its run's record).
    let model_of = |path: &Path| -> Result<(AnyModel, ImageBatcher), CliError> {
        let stats = super::activations::training_stats(&args.data, &dataset, Some(path))?;
        Ok((
            spec.init_with_weights(path, device)?,
            ImageBatcher::new(stats),
        ))
    };
    let same = same_file(&args.a, &args.b);
    let (model_a, batcher_a) = model_of(&args.a)?;
    let b = (!same).then(|| model_of(&args.b)).transpose()?;
    let run = |model, batcher| ProbeRun {
        model,
        dataset: &dataset,
        batcher,
        count: args.count,
        batch_size: what.batch_size(),
        probe: &args.probe,
        device,
    };
    let probe_a = run(&model_a, batcher_a);
    let probe_b = b
        .as_ref()
        .map(|(model, batcher)| run(model, batcher.clone()));
    what.with(&probe_a, probe_b.as_ref(), args.conv)
}

/// Whether `path` is a run directory of `repsim train`.
fn is_run_dir(path: &Path) -> bool {
    path.is_dir() && path.join("config.json").is_file()
}

/// Two runs' final models on the first `args.count` images of their common test split. Both
/// must have been trained on the same test data.
fn probe_runs<U: ProbeUse>(
    args: &CompareArgs,
    device: &burn::tensor::Device,
    what: U,
) -> Result<U::Output, CliError> {
    use repsim_train::datasets::RunData;
    let (a, b, count) = (&args.a, &args.b, args.count);
    let (record_a, record_b) = run_records(a, b, count)?;
    let open = |dir: &Path, record: &repsim_train::RunRecord| -> Result<_, CliError> {
        let data = RunData::open(&record.config.data, record.config.seed)?;
        if count > data.test_len() {
            return Err(CliError::Input(format!(
                "--count {count} is larger than the test split of {} ({} images)",
                dir.display(),
                data.test_len()
            )));
        }
        let RunData::Images(images) = data else {
            return Err(CliError::Input(format!(
                "{}: comparing language-model runs is not supported; use the Tracker's tables",
                dir.display()
            )));
        };
        let model = record
            .config
            .model
            .init_with_weights(&dir.join(repsim_train::FINAL_WEIGHTS), device)?;
        // The statistics the run recorded; a run without them normalises as it was trained
        // (RunData computes them from the same training subset).
        let batcher = record
            .normalization
            .map_or(images.batcher, ImageBatcher::new);
        Ok((images.test, model, batcher))
    };
    status!(
        "probing {} and {} on the first {count} test images",
        a.display(),
        b.display()
    );
    let same = same_file(a, b);
    let (test_a, model_a, batcher_a) = open(a, &record_a)?;
    let side_b = (!same).then(|| open(b, &record_b)).transpose()?;
    let run = |test, model, batcher| ProbeRun {
        model,
        dataset: test,
        batcher,
        count,
        batch_size: what.batch_size(),
        probe: &args.probe,
        device,
    };
    let probe_a = run(&*test_a, &model_a, batcher_a);
    let probe_b = side_b
        .as_ref()
        .map(|(test, model, batcher)| run(&**test, model, batcher.clone()));
    what.with(&probe_a, probe_b.as_ref(), args.conv)
}

/// The records of two finished runs trained on the same data (so their test images are the
/// same examples), refused otherwise; `count` must be at least 2.
fn run_records(
    a: &Path,
    b: &Path,
    count: usize,
) -> Result<(repsim_train::RunRecord, repsim_train::RunRecord), CliError> {
    use repsim_train::{durable::read_json, RunRecord};
    for path in [a, b] {
        if !is_run_dir(path) {
            return Err(CliError::Input(format!(
                "{} is not a run directory of `repsim train` (no config.json): compare two run directories, or two activation files",
                path.display()
            )));
        }
        if !path.join(repsim_train::FINAL_WEIGHTS).is_file() {
            return Err(CliError::Input(format!(
                "{} has no final weights ({}) yet: let the run finish (or resume it)",
                path.display(),
                repsim_train::FINAL_WEIGHTS
            )));
        }
    }
    let (record_a, record_b): (RunRecord, RunRecord) = (
        read_json(&a.join("config.json"))?,
        read_json(&b.join("config.json"))?,
    );
    let (da, db) = (&record_a.config.data, &record_b.config.data);
    let fields = [
        ("dataset", da.dataset != db.dataset),
        ("side", da.side != db.side),
        ("data_seed", da.data_seed != db.data_seed),
    ];
    if let Some((field, _)) = fields.iter().find(|(_, differs)| *differs) {
        return Err(CliError::Input(format!(
            "{} and {} were trained on different data (`{field}` differs): their test images are not the same examples",
            a.display(),
            b.display()
        )));
    }
    if count < 2 {
        return Err(CliError::Input(format!(
            "--count must be at least 2, got {count}"
        )));
    }
    Ok((record_a, record_b))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The `inputs` entry of a streamed or merged comparison's results: each input's path, size,
/// content fingerprint and rows hash (the same for any split into shards). B is `null` when B
/// is A.
pub fn identity_json(
    identity: &(
        repsim_similarity::shard::InputIdentity,
        Option<repsim_similarity::shard::InputIdentity>,
    ),
) -> serde_json::Value {
    serde_json::json!({ "a": identity.0, "b": identity.1 })
}
