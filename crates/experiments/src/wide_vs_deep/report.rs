//! wide_vs_deep's figures and summary.

use repsim_viz::{
    save, GridPanel, Heatmap, HeatmapGrid, HeatmapOptions, ImageGrid, LineColors, LinePlot, Series,
    Tile,
};

use super::results::{
    BlockTrend, CrossResult, ModelResult, PerClassResult, Spread, WideVsDeepAnalysis,
    WideVsDeepConfig, CLASS_RESAMPLES,
};
use crate::error::{Error, Result};
use crate::harness::{image_data, markdown_table, Context, Figure, Provenance};
use crate::statistics::holm;
use repsim_train::datasets::RunData;

/// The grid's figures: depth down (one row per depth), width across.
fn grid<'a>(
    config: &WideVsDeepConfig,
    panels: Vec<Option<GridPanel<'a>>>,
    title: &str,
) -> HeatmapGrid<'a> {
    let rows = config.depths.iter().map(|d| format!("depth {d}")).collect();
    grid_with_rows(&config.widths, panels, rows, title)
}

/// A figure of one within-model matrix per panel: the rows `row_headers`, width across.
fn grid_with_rows<'a>(
    widths: &[usize],
    panels: Vec<Option<GridPanel<'a>>>,
    row_headers: Vec<String>,
    title: &str,
) -> HeatmapGrid<'a> {
    let mut grid = HeatmapGrid::new(panels, row_headers.len(), widths.len());
    grid.row_headers = row_headers;
    grid.col_headers = widths.iter().map(|w| format!("width x{w}")).collect();
    grid.title = Some(title.to_string());
    grid.origin_lower = true;
    grid.row_title = Some("layer".into());
    grid.col_title = Some("layer".into());
    grid
}

/// One panel per grid cell, depth down and width across, from the model of that depth and
/// width (none for an omitted cell).
fn by_cell<'a>(
    config: &WideVsDeepConfig,
    models: &'a [ModelResult],
    panel: impl Fn(&'a ModelResult) -> GridPanel<'a>,
) -> Vec<Option<GridPanel<'a>>> {
    config
        .depths
        .iter()
        .flat_map(|&d| config.widths.iter().map(move |&w| (d, w)))
        .map(|(d, w)| {
            models
                .iter()
                .find(|m| m.depth == d && m.width == w)
                .map(&panel)
        })
        .collect()
}

/// Draws the grids of within-model CKA (with and without the first PC), the first-PC
/// fractions and each cross-model comparison.
pub(super) fn draw(
    ctx: &Context,
    config: &WideVsDeepConfig,
    models: &[ModelResult],
    size_models: &[ModelResult],
    cross: &[CrossResult],
) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let caption = |m: &ModelResult| {
        Some(format!(
            "{:.0}% · block {}/{} · contrast {:.2}",
            100.0 * m.test_accuracy,
            m.block.1,
            m.within_cka.rows.len(),
            m.block_contrast
        ))
    };
    let panels = by_cell(config, models, |m| GridPanel {
        matrix: &m.within_cka,
        caption: caption(m),
    });
    save(
        &grid(config, panels, "Minibatch CKA within each model"),
        &ctx.out.join("within_cka.png"),
    )?;
    figures.push(Figure::new("within_cka.png", "Minibatch CKA between every pair of layers of each model (depth down, width across), as in Nguyen et al. 2021, Fig. 1. Captions: test accuracy and the longest block of layers with pairwise CKA above the threshold."));
    let panels = by_cell(config, models, |m| GridPanel {
        matrix: &m.cka_first_pc_removed,
        caption: Some(format!(
            "block {}/{}",
            (m.block_share_pc_removed * m.within_cka.rows.len() as f64).round(),
            m.within_cka.rows.len()
        )),
    });
    save(
        &grid(
            config,
            panels,
            "CKA with each layer's first principal component removed",
        ),
        &ctx.out.join("within_cka_first_pc_removed.png"),
    )?;
    figures.push(Figure::new("within_cka_first_pc_removed.png", "Debiased CKA with each layer's first principal component projected out (Nguyen et al. 2021, Section 4)."));
    let panels = by_cell(config, models, |m| GridPanel {
        matrix: &m.cka_first_pc_alone,
        caption: Some(format!(
            "1st PC {:.0}% of variance in block",
            100.0 * mean_over_block(m)
        )),
    });
    save(
        &grid(
            config,
            panels,
            "CKA of each layer's first principal component alone",
        ),
        &ctx.out.join("within_cka_first_pc_alone.png"),
    )?;
    figures.push(Figure::new("within_cka_first_pc_alone.png", "Debiased CKA between the layers' first principal components alone, on the same examples (Nguyen et al. 2021, Section 4: where one component dominates a block, the block shows here as it does in the full map)."));
    let series = models
        .iter()
        .map(|m| {
            let l = (m.first_pc_fraction.len().max(2) - 1) as f64;
            Series {
                name: m.name.clone(),
                points: m
                    .first_pc_fraction
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (i as f64 / l, *f))
                    .collect(),
                band: None,
            }
        })
        .collect();
    let mut plot = LinePlot::new(
        series,
        "Variance explained by each layer's first principal component",
        "relative depth (layer index / last layer)",
        "fraction of variance",
    );
    plot.colors = LineColors::Legend;
    plot.y_range = Some((0.0, 1.0));
    save(&plot, &ctx.out.join("first_pc_fraction.png"))?;
    figures.push(Figure::new(
        "first_pc_fraction.png",
        "The share of each layer's variance on its first principal component, per model.",
    ));
    if !size_models.is_empty() {
        figures.extend(draw_by_training_size(ctx, config, models, size_models)?);
    }
    let every_model: Vec<&ModelResult> = models.iter().chain(size_models).collect();
    figures.extend(draw_dominant_images(ctx, config, &every_model)?);
    for c in cross {
        let file = format!("cross_{}.png", c.label.replace([' ', ','], "_"));
        let options = HeatmapOptions {
            title: Some(format!("{}: {} vs {}", c.label, c.model_a, c.model_b)),
            row_title: Some(c.model_a.clone()),
            col_title: Some(c.model_b.clone()),
            origin_lower: true,
            ..HeatmapOptions::default()
        };
        save(&Heatmap::new(&c.cka, options), &ctx.out.join(&file))?;
        figures.push(Figure::new(
            file,
            format!("Minibatch CKA across models: {}.", c.label),
        ));
    }
    Ok(figures)
}

/// The first-seed models, at every training-set size, near the threshold of block structure
/// ([`WideVsDeepConfig::near_threshold`]) and trained from one seed only.
pub(super) fn near_threshold<'a>(
    c: &WideVsDeepConfig,
    r: &'a WideVsDeepAnalysis,
) -> Vec<&'a ModelResult> {
    let every: Vec<&ModelResult> = r
        .models
        .iter()
        .chain(&r.seed_models)
        .chain(&r.size_models)
        .collect();
    every
        .iter()
        .copied()
        .filter(|m| !m.name.contains("-seed"))
        .filter(|m| {
            let second = format!("{}-seed2", m.name);
            !every.iter().any(|other| other.name == second)
        })
        .filter(|m| c.near_threshold(m))
        .collect()
}

/// The file of the follow-up configuration: this run's, with the one-seed models near the
/// threshold added to `extra_seeds`.
pub(super) const NEAR_THRESHOLD_CONFIG: &str = "near_threshold_seeds.json";

/// Writes [`NEAR_THRESHOLD_CONFIG`] when a one-seed model is near the threshold, and removes
/// an earlier run's when none is (its models have their second seeds now).
pub(super) fn write_near_threshold_config(
    ctx: &Context,
    c: &WideVsDeepConfig,
    r: &WideVsDeepAnalysis,
) -> Result<()> {
    let near = near_threshold(c, r);
    if near.is_empty() {
        return match std::fs::remove_file(ctx.out.join(NEAR_THRESHOLD_CONFIG)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Failure(format!(
                "removing the stale {}: {e}",
                ctx.out.join(NEAR_THRESHOLD_CONFIG).display()
            ))),
            _ => Ok(()),
        };
    }
    let mut follow_up = c.clone();
    for m in near {
        let model = (m.depth, m.width, m.train_images);
        if !follow_up.extra_seeds.contains(&model) {
            follow_up.extra_seeds.push(model);
        }
    }
    ctx.write_json(NEAR_THRESHOLD_CONFIG, &follow_up)?;
    Ok(())
}

/// The models whose dominant images are drawn (among the first seed's, at every training-set
/// size): those with block structure, or, with none, the one whose block stands apart most.
fn with_dominant_images<'a>(models: &[&'a ModelResult]) -> Vec<&'a ModelResult> {
    let with_block: Vec<&ModelResult> = models
        .iter()
        .copied()
        .filter(|m| m.block_structure && m.dominant_images.is_some())
        .collect();
    if !with_block.is_empty() {
        return with_block;
    }
    models
        .iter()
        .copied()
        .filter(|m| m.dominant_images.is_some())
        .max_by(|a, b| a.block_contrast.total_cmp(&b.block_contrast))
        .into_iter()
        .collect()
}

/// The test images loading most on the first PC of each chosen model's block (one row per
/// model), captioned with their class and share of the component.
fn draw_dominant_images(
    ctx: &Context,
    config: &WideVsDeepConfig,
    models: &[&ModelResult],
) -> Result<Option<Figure>> {
    use burn::data::dataset::Dataset;
    let chosen = with_dominant_images(models);
    if chosen.is_empty() {
        return Ok(None);
    }
    let data_config = image_data(
        &ctx.args,
        config.side,
        config.train_count,
        config.test_count,
    );
    let RunData::Images(data) = RunData::open(&data_config, ctx.args.seed)? else {
        return Ok(None);
    };
    let mut tiles = Vec::new();
    let cols = chosen
        .iter()
        .filter_map(|m| m.dominant_images.as_ref())
        .map(|d| d.images.len())
        .max()
        .unwrap_or(1);
    for m in &chosen {
        let Some(dominant) = &m.dominant_images else {
            continue;
        };
        for image in &dominant.images {
            let item = data.test.get(image.index).map_err(|e| {
                Error::Failure(format!("test image {} of {}: {e}", image.index, m.name))
            })?;
            tiles.push(Tile {
                rgb: item.to_rgb_interleaved(),
                width: item.width,
                height: item.height,
                caption: format!("{} {:.0}%", image.class, 100.0 * image.share),
            });
        }
        // Pad a short row, so every model starts a row.
        while tiles.len() % cols != 0 {
            tiles.push(Tile {
                rgb: vec![255; 3 * config.side * config.side],
                width: config.side,
                height: config.side,
                caption: String::new(),
            });
        }
    }
    let names: Vec<String> = chosen
        .iter()
        .map(|m| {
            let d = m.dominant_images.as_ref().map_or("", |d| d.layer.as_str());
            format!("{} ({d})", m.name)
        })
        .collect();
    let grid = ImageGrid {
        tiles,
        cols,
        title: format!(
            "Test images loading most on the block's first PC; rows: {}",
            names.join(", ")
        ),
        zoom: (96 / config.side.max(1)).clamp(1, 8),
    };
    let file = "dominant_images.png";
    save(&grid, &ctx.out.join(file))?;
    Ok(Some(Figure::new(
        file,
        format!(
            "The {} test images with the largest share u_i^2 of the first principal component of the middle layer of each model's block (models with block structure, or the one whose block stands apart most), the dominant datapoints of Nguyen, Raghu & Kornblith 2022 (On the Origins of the Block Structure Phenomenon). An even spread would give each 1/{} of the component.",
            cols, config.pc_examples
        ),
    )))
}

/// The summary's dominant-images lines: per chosen model, the top images' share of the block's
/// first PC against an even spread, and their classes.
fn dominant_images_text(r: &WideVsDeepAnalysis) -> String {
    let every_model: Vec<&ModelResult> = r.models.iter().chain(&r.size_models).collect();
    let chosen = with_dominant_images(&every_model);
    if chosen.is_empty() {
        return String::new();
    }
    let mut s = "**Dominant images** (the test images carrying most of the first principal component of the block's middle layer; `u` is the component over the PC examples, image `i` carries `u_i^2` of it):\n\n"
        .to_string();
    for m in chosen {
        let Some(d) = &m.dominant_images else {
            continue;
        };
        let mut classes: Vec<(String, usize)> = Vec::new();
        for image in &d.images {
            match classes.iter_mut().find(|(c, _)| *c == image.class) {
                Some((_, n)) => *n += 1,
                None => classes.push((image.class.clone(), 1)),
            }
        }
        s.push_str(&format!(
            "- {} ({}, block structure: {}): its {} top images carry {:.1}% of the component ({:.1}% if it were spread evenly over the {} examples); their classes: {}.\n",
            m.name,
            d.layer,
            if m.block_structure { "yes" } else { "no" },
            d.images.len(),
            100.0 * d.top_share,
            100.0 * d.images.len() as f64 / d.examples.max(1) as f64,
            d.examples,
            classes
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s.push('\n');
    s
}

/// The paper's layout of its training-set-size figures: one grid per depth, training-set size
/// down (smallest first) and width across, each panel the first seed's within-model CKA.
fn draw_by_training_size(
    ctx: &Context,
    config: &WideVsDeepConfig,
    models: &[ModelResult],
    size_models: &[ModelResult],
) -> Result<Vec<Figure>> {
    let mut sizes = config.train_counts();
    sizes.sort_unstable();
    let mut figures = Vec::new();
    for &depth in &config.depths {
        // The widths trained at this depth (an omitted cell is not an empty column here).
        let widths: Vec<usize> = config
            .widths
            .iter()
            .copied()
            .filter(|&w| config.cells().contains(&(depth, w)))
            .collect();
        if widths.is_empty() {
            continue;
        }
        let panels: Vec<Option<GridPanel>> = sizes
            .iter()
            .flat_map(|&n| widths.iter().map(move |&w| (n, w)))
            .map(|(n, w)| {
                models
                    .iter()
                    .chain(size_models)
                    .find(|m| {
                        m.depth == depth
                            && m.width == w
                            && m.train_images == n
                            && !m.name.contains("-seed")
                    })
                    .map(|m| GridPanel {
                        matrix: &m.within_cka,
                        caption: Some(format!(
                            "train {:.0}% · block {}/{} · contrast {:.2}",
                            100.0 * m.train_accuracy,
                            m.block.1,
                            m.within_cka.rows.len(),
                            m.block_contrast
                        )),
                    })
            })
            .collect();
        let grid = grid_with_rows(
            &widths,
            panels,
            sizes.iter().map(|n| format!("{n} images")).collect(),
            &format!("ResNet-{depth}: minibatch CKA within each model, by training-set size"),
        );
        let file = format!("within_cka_depth{depth}_by_training_size.png");
        save(&grid, &ctx.out.join(&file))?;
        figures.push(Figure::new(
            file,
            format!("Minibatch CKA within each ResNet-{depth} (training-set size down, width across), in the layout of Nguyen et al. 2021's training-set-size figure. Captions: final training accuracy and the block."),
        ));
    }
    Ok(figures)
}

/// `summary.md` up to the reproduce line.
/// ` (not ResNet-38 x4)`, or nothing when the grid is whole.
fn omitted(c: &WideVsDeepConfig) -> String {
    if c.omit.is_empty() {
        return String::new();
    }
    let names: Vec<String> = c
        .omit
        .iter()
        .map(|(d, w)| format!("ResNet-{d} x{w}"))
        .collect();
    format!(" (not {})", names.join(", "))
}

pub(super) fn summary(
    c: &WideVsDeepConfig,
    r: &WideVsDeepAnalysis,
    p: &Provenance,
    figures: &[Figure],
) -> String {
    let mut s = format!(
        "# wide_vs_deep\n\nNguyen, Raghu & Kornblith 2021, *Do Wide and Deep Networks Learn the Same Things?*\n\n\
         CIFAR-layout ResNets of depths {:?} and widths {:?}{}, trained on `{}` ({} training / {} test images, {} px) \
         for {} epochs{} (SGD, momentum 0.9, weight decay {}, peak lr {} after {} epochs of linear warm-up, cosine, batch {}). \
         Within-model similarity is minibatch CKA (unbiased HSIC per batch of {}, {} shuffled passes over the {} test images). \
         Device: {}. Wall time of this run {:.0} s (training {:.0} s, analysis {:.0} s); the models' own training time, \
         summed from their metrics, {:.0} s.\n\n",
        c.depths, c.widths, omitted(c), p.data, c.train_count, c.test_count, c.side, c.epochs,
        match c.repeats_at(c.train_count) {
            1 => String::new(),
            k => format!(" of {} images (each training image {k} times, augmented anew), {} steps", k * c.train_count, c.steps_at(c.train_count)),
        },
        c.weight_decay, c.lr, c.warmup_epochs, c.batch_size,
        c.cka_batch, c.passes, c.test_count, p.device, p.train_seconds + p.analysis_seconds, p.train_seconds, p.analysis_seconds,
        p.models_training_seconds
    );
    s.push_str(&format!(
        "**Block-structure number**: the *block* is the longest run of consecutive probed layers whose pairwise CKA all exceed {}; \
         its *share* is its length over the model's layers, and its *contrast* the mean CKA inside it minus the mean CKA between its \
         layers and the others. Adjacent residual-block outputs are often similar, so a short run is expected everywhere, and a deep \
         narrow network can show a long smooth band of similar layers that does not stand apart; a model is counted as showing \
         **block structure** when its block holds at least {:.0}% of the layers and {} layers, with a contrast of at least {}.\n\n",
        c.block_threshold, 100.0 * c.block_min_share, c.block_min_layers, c.block_min_contrast
    ));
    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .map(|m| {
            let (inside, outside) = first_pc_in_and_out(m);
            vec![
                m.name.clone(),
                format!("{}", m.parameters),
                format!("{:.1}%", 100.0 * m.test_accuracy),
                format!("{:.1}%", 100.0 * m.train_accuracy),
                format!(
                    "{} of {} ({}..{})",
                    m.block.1,
                    m.within_cka.rows.len(),
                    m.within_cka.rows[m.block.0],
                    m.within_cka.rows[m.block.0 + m.block.1 - 1]
                ),
                format!("{:.2}", m.block_share),
                format!("{:.2}", m.block_contrast),
                (if m.block_structure { "yes" } else { "no" }).to_string(),
                format!(
                    "{:.2} -> {:.2} (contrast {:.2} -> {:.2})",
                    m.block_share_pc_examples,
                    m.block_share_pc_removed,
                    m.block_contrast_pc_examples,
                    m.block_contrast_pc_removed
                ),
                inside,
                outside,
            ]
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "model",
            "parameters",
            "test acc",
            "train acc",
            "block (layers)",
            "share",
            "contrast",
            "block structure",
            "share (contrast), 1st PC removed (debiased CKA, PC examples)",
            "1st-PC variance in block",
            "outside",
        ],
        &rows,
    ));
    s.push('\n');
    for c in &r.cross {
        s.push_str(&format!(
            "- {}: {} vs {}{}\n",
            c.label,
            c.model_a,
            c.model_b,
            c.diagonal_mean.map_or(String::new(), |d| format!(
                ", mean CKA of corresponding layers {d:.3}"
            ))
        ));
    }
    s.push('\n');
    s.push_str(&dominant_images_text(r));
    s.push_str(&training_sizes_table(c, r));
    s.push_str(&seeds_table(r));
    if let Some(pc) = &r.per_class {
        s.push_str(&per_class_table(pc));
    }
    s.push_str(&capacity_trend(r));
    s.push_str(&significance(c, r));
    for Figure { file, caption } in figures {
        s.push_str(&format!("![{file}]({file})\n\n*{caption}*\n\n"));
    }
    s
}

/// The mean share of variance on the first principal component over the block's layers.
fn mean_over_block(m: &ModelResult) -> f64 {
    first_pc_mean(m, true).unwrap_or(0.0)
}

/// The mean first-PC share of the block's layers (`inside`) or of the others; `None` where
/// there are none.
fn first_pc_mean(m: &ModelResult, inside: bool) -> Option<f64> {
    let in_block = |i: usize| i >= m.block.0 && i < m.block.0 + m.block.1;
    let v: Vec<f64> = m
        .first_pc_fraction
        .iter()
        .enumerate()
        .filter(|(i, _)| in_block(*i) == inside)
        .map(|(_, v)| *v)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The mean share of variance on the first principal component of the block's layers and of
/// the other layers (`-` where there are none).
fn first_pc_in_and_out(m: &ModelResult) -> (String, String) {
    let text = |inside| first_pc_mean(m, inside).map_or("-".into(), |v| format!("{v:.2}"));
    (text(true), text(false))
}

/// Every model at every training-set size (the paper's third axis), when there is more than one
/// size: sorted by architecture, then size, then seed.
fn training_sizes_table(c: &WideVsDeepConfig, r: &WideVsDeepAnalysis) -> String {
    if r.size_models.is_empty() {
        return String::new();
    }
    let mut all: Vec<&ModelResult> = r
        .models
        .iter()
        .chain(&r.seed_models)
        .chain(&r.size_models)
        .collect();
    all.sort_by_key(|m| {
        (
            m.depth,
            m.width,
            m.train_images,
            m.name.contains("-seed"),
            m.name.clone(),
        )
    });
    let schedules: Vec<String> = c
        .train_counts()
        .iter()
        .map(|&n| {
            let (epochs, warmup) = c.schedule_at(n);
            let repeats = match c.repeats_at(n) {
                1 => String::new(),
                k => format!(" of the {n} images {k} times over"),
            };
            format!(
                "N = {n}: {epochs} epochs{repeats} ({warmup} of warm-up), {} steps",
                c.steps_at(n)
            )
        })
        .collect();
    let mut s = format!(
        "## Training-set size

The grid trained on the first N training images for each N, every model from the same initialisation at every N (a paired design), for about the same number of optimisation steps: {}. Training accuracy is the last epoch's, on augmented images.

",
        schedules.join("; ")
    );
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|m| {
            let (inside, outside) = first_pc_in_and_out(m);
            vec![
                m.name.clone(),
                m.train_images.to_string(),
                m.parameters.to_string(),
                format!("{:.0}", m.parameters as f64 / m.train_images.max(1) as f64),
                m.steps.to_string(),
                format!("{:.1}%", 100.0 * m.train_accuracy),
                format!("{:.1}%", 100.0 * m.test_accuracy),
                format!("{} of {}", m.block.1, m.within_cka.rows.len()),
                format!("{:.2}", m.block_share),
                format!("{:.2}", m.block_contrast),
                (if m.block_structure { "yes" } else { "no" }).to_string(),
                inside,
                outside,
            ]
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "model",
            "N",
            "parameters",
            "parameters per image",
            "steps",
            "train acc",
            "test acc",
            "block (layers)",
            "share",
            "contrast",
            "block structure",
            "1st-PC variance in block",
            "outside",
        ],
        &rows,
    ));
    s.push('\n');
    s
}

/// `mean ± sd` (just the mean for one seed), with `scale` and `digits`.
fn spread(v: &Spread, scale: f64, digits: usize) -> String {
    match v.sd {
        Some(sd) => format!("{:.digits$} ± {:.digits$}", scale * v.mean, scale * sd),
        None => format!("{:.digits$}", scale * v.mean),
    }
}

/// The architectures over their seeds, when any was trained from more than one.
fn seeds_table(r: &WideVsDeepAnalysis) -> String {
    if r.architectures.iter().all(|a| a.runs.len() < 2) {
        return String::new();
    }
    let rows: Vec<Vec<String>> = r
        .architectures
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.runs.len().to_string(),
                format!("{}%", spread(&a.test_accuracy, 100.0, 1)),
                spread(&a.block_layers, 1.0, 1),
                spread(&a.block_share, 1.0, 2),
                spread(&a.block_contrast, 1.0, 2),
                format!("{} of {}", a.with_block_structure, a.runs.len()),
            ]
        })
        .collect();
    let mut s = "**Over seeds** (mean ± sd over the seeds each architecture was trained from; one number where there is one seed):\n\n".to_string();
    s.push_str(&markdown_table(
        &[
            "architecture",
            "seeds",
            "test acc",
            "block (layers)",
            "share",
            "contrast",
            "block structure in",
        ],
        &rows,
    ));
    s.push('\n');
    s
}

/// Whether a class's wide-minus-deep gap stands out: its interval excludes zero, and it is
/// larger than the largest gap between two seeds of one architecture over the classes (when
/// there is that baseline).
fn gap_stands_out(pc: &PerClassResult, class: usize) -> bool {
    let gap = &pc.gaps[class];
    gap.interval.is_some_and(|i| i.excludes(0.0)) && gap.gap.abs() > largest_seed_gap(pc)
}

/// The largest seed-to-seed gap over the classes (0 without a baseline).
fn largest_seed_gap(pc: &PerClassResult) -> f64 {
    pc.gaps
        .iter()
        .filter_map(|g| g.seed_gap)
        .map(f64::abs)
        .fold(0.0, f64::max)
}

/// The per-class table (the paper's Section 6).
fn per_class_table(pc: &PerClassResult) -> String {
    let seeds = pc.seeds.max(1);
    let mut s = format!(
        "**Per class** (the paper's Section 6), {} (wide) vs {} (deep), the pair of a wider-shallower and a narrower-deeper model \
         with the closest test accuracy. The gap is averaged over {} seed(s) of each; its interval is a 95% bootstrap over the \
         class's test images ({} resamples).{}\n\n",
        pc.wide,
        pc.deep,
        seeds,
        CLASS_RESAMPLES,
        match &pc.baseline {
            Some((a, b)) => format!(
                " The baseline is the same gap between two seeds of one architecture ({a} minus {b}): a wide-vs-deep gap counts \
                 only when its interval excludes zero and it is larger than the largest seed-to-seed gap over the classes."
            ),
            None => " No two seeds of one architecture were trained, so there is no seed-to-seed baseline.".into(),
        }
    );
    let interval = |i: Option<crate::statistics::Interval>| {
        i.map_or(String::new(), |i| {
            format!(" [{:+.1}, {:+.1}]", 100.0 * i.low, 100.0 * i.high)
        })
    };
    let rows: Vec<Vec<String>> = pc
        .classes
        .iter()
        .enumerate()
        .map(|(k, (name, n, w, d))| {
            let gap = pc.gaps.get(k);
            vec![
                name.clone(),
                n.to_string(),
                format!("{:.1}%", 100.0 * w),
                format!("{:.1}%", 100.0 * d),
                gap.map_or("-".into(), |g| {
                    format!("{:+.1}{}", 100.0 * g.gap, interval(g.interval))
                }),
                gap.and_then(|g| g.seed_gap.map(|v| (v, g.seed_interval)))
                    .map_or("-".into(), |(v, i)| {
                        format!("{:+.1}{}", 100.0 * v, interval(i))
                    }),
                if gap.is_some() && gap_stands_out(pc, k) {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "class",
            "test images",
            "wide (seed 1)",
            "deep (seed 1)",
            "wide - deep (points) [95%]",
            "seed-to-seed (points) [95%]",
            "stands out",
        ],
        &rows,
    ));
    s.push('\n');
    s
}

/// The summary's answer to "does block structure grow with capacity relative to the training
/// set?": Spearman's correlation of each block statistic with ln(parameters per training image),
/// its interval and permutation p-value, and what the grid can and cannot say; then the same
/// against the training error (the earlier runs' lead), with Holm's correction over all four
/// tests.
fn capacity_trend(r: &WideVsDeepAnalysis) -> String {
    let mut s = "## Block structure against capacity per training image

"
    .to_string();
    if r.capacity_trend.is_empty() {
        s.push_str("Fewer than three models: no trend is measured.\n\n");
        return s;
    }
    let tested = trend_tests(r);
    let (tests, corrected): (Vec<&BlockTrend>, Vec<Option<f64>>) = tested.into_iter().unzip();
    let line = |t: &BlockTrend, holm_p: Option<f64>, grows: &str, falls: &str| {
        let verdict = match (t.interval, holm_p) {
            (Some(i), Some(p)) if i.low > 0.0 && p <= 0.05 => grows.to_string(),
            (Some(i), _) if i.high < 0.0 => falls.to_string(),
            _ => "no trend distinguishable from none".to_string(),
        };
        format!(
            "- **{}** against {}, over {} models and seeds: Spearman {:+.2} [95% bootstrap {}], \
             one-sided permutation p = {:.3} ({} orderings; Holm-corrected over the {} tests: {}): {verdict}.\n",
            t.statistic.replace('_', " "),
            t.against,
            t.points,
            t.spearman,
            t.interval
                .map_or("undefined".into(), |i| format!("{:+.2}, {:+.2}", i.low, i.high)),
            t.p_value,
            t.permutations,
            tests.len(),
            holm_p.map_or("undefined".into(), |p| format!("{p:.3}")),
        )
    };
    let k = r.capacity_trend.len();
    for (t, p) in r.capacity_trend.iter().zip(&corrected) {
        s.push_str(&line(
            t,
            *p,
            "grows with capacity per image",
            "falls with capacity per image",
        ));
    }
    let sizes = &r.capacity_trend[0].training_set_sizes;
    if sizes.len() == 1 {
        s.push_str(&format!(
            "\nEvery model here saw the same {} training images, so this trend is over capacity alone: the paper's claim is about \
             capacity *relative to* the training set, and its other axis, the training-set size, is not varied by this grid. \
             The bootstrap treats models and seeds as exchangeable.\n\n",
            sizes[0]
        ));
    } else {
        s.push_str(&format!(
            "\nThe models were trained on {} different training-set sizes ({}), so capacity per image varies with both the architecture and the data, as in the paper. The bootstrap treats models, seeds and sizes as exchangeable, although a model at several sizes shares its initialisation.\n\n",
            sizes.len(),
            sizes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    if !r.fit_trend.is_empty() {
        s.push_str(
            "## Block structure against training error\n\nEarlier runs at this scale (the book's `wide_vs_deep` page) found blocks in deep \
             models far from fitting their data and none once trained to fit: stated before this run as the hypothesis that a block \
             statistic grows with the training error (1 - final training accuracy), one-sided.\n\n",
        );
        for (t, p) in r.fit_trend.iter().zip(&corrected[k..]) {
            s.push_str(&line(
                t,
                *p,
                "grows with the training error",
                "falls with the training error",
            ));
        }
        s.push('\n');
    }
    s
}

/// Every trend test (capacity, then fit) with its Holm-corrected p-value over all of them.
fn trend_tests(r: &WideVsDeepAnalysis) -> Vec<(&BlockTrend, Option<f64>)> {
    let tests: Vec<&BlockTrend> = r.capacity_trend.iter().chain(&r.fit_trend).collect();
    let corrected = holm(&tests.iter().map(|t| Some(t.p_value)).collect::<Vec<_>>());
    tests.into_iter().zip(corrected).collect()
}

/// The summary's "Significance at this scale": which findings the seeds and the intervals
/// support, and which they do not.
fn significance(c: &WideVsDeepConfig, r: &WideVsDeepAnalysis) -> String {
    let mut s = "## Significance at this scale\n\n".to_string();
    let with_block: Vec<String> = r
        .architectures
        .iter()
        .filter(|a| a.with_block_structure > 0)
        .map(|a| {
            format!(
                "{} in {} of {} seed(s) (share {})",
                a.name,
                a.with_block_structure,
                a.runs.len(),
                spread(&a.block_share, 1.0, 2)
            )
        })
        .collect();
    // Per architecture and size, the seeds with block structure out of those trained.
    let mut groups: Vec<((usize, usize, usize), usize, usize)> = Vec::new();
    for m in &r.size_models {
        let key = (m.depth, m.width, m.train_images);
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, with, of)) => {
                *with += usize::from(m.block_structure);
                *of += 1;
            }
            None => groups.push((key, usize::from(m.block_structure), 1)),
        }
    }
    let at_other_sizes: Vec<String> = groups
        .iter()
        .filter(|(_, with, _)| *with > 0)
        .map(|((depth, width, n), with, of)| {
            format!("ResNet-{depth} x{width} on {n} images in {with} of {of} seed(s)")
        })
        .collect();
    s.push_str(&format!(
        "- **Block structure**: {}{}.",
        if with_block.is_empty() {
            format!("no model at {} training images shows it", c.train_count)
        } else {
            format!(
                "at {} training images, {}",
                c.train_count,
                with_block.join("; ")
            )
        },
        match (r.size_models.len(), at_other_sizes.len()) {
            (0, _) => String::new(),
            (n, 0) => format!("; at the other training-set sizes, none of {n} models"),
            (n, _) => format!(
                "; at the other training-set sizes ({n} models): {}",
                at_other_sizes.join("; ")
            ),
        }
    ));
    let single: Vec<&str> = r
        .architectures
        .iter()
        .filter(|a| a.runs.len() < 2)
        .map(|a| a.name.as_str())
        .collect();
    if !single.is_empty() {
        s.push_str(&format!(
            " {} of the {} architectures were trained from one seed ({}), so whether their block (or its absence) holds across \
             seeds is not measured{}.",
            single.len(),
            r.architectures.len(),
            single.join(", "),
            if c.seeds == 1 {
                "; `--seeds 2` trains the whole grid twice"
            } else {
                ""
            }
        ));
    }
    s.push('\n');
    let tested = trend_tests(r);
    if !tested.is_empty() {
        let supported: Vec<String> = tested
            .iter()
            .filter(|(t, p)| {
                t.interval.is_some_and(|i| i.low > 0.0) && p.is_some_and(|p| p <= 0.05)
            })
            .map(|(t, p)| {
                format!(
                    "{} with {} (Spearman {:+.2}, Holm p = {:.3})",
                    t.statistic.replace('_', " "),
                    t.against,
                    t.spearman,
                    p.unwrap_or(1.0)
                )
            })
            .collect();
        s.push_str(&format!(
            "- **Trends** ({} one-sided tests over {} models and seeds, Holm-corrected): {}.\n",
            tested.len(),
            tested[0].0.points,
            if supported.is_empty() {
                "none supported (a supported trend needs a 95% interval above zero and a corrected p of at most 0.05)".to_string()
            } else {
                format!("supported: {}", supported.join("; "))
            }
        ));
    }
    if c.seeds == 1 {
        let near = near_threshold(c, r);
        s.push_str(&format!(
            "- **Near the threshold** (block contrast or share within {:.2} of its threshold, or the block one layer short; \
             one seed each): {}\n",
            c.near_threshold_margin,
            if near.is_empty() {
                "none.".to_string()
            } else {
                format!(
                    "{}. Their verdicts could flip with the seed: a second seed of each is trained by rerunning with \
                     `--config {NEAR_THRESHOLD_CONFIG}` (written beside this summary: this run's configuration with them in \
                     `extra_seeds`) and this run's other flags; every model trained here is reused.",
                    near.iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
    }
    if let Some(pc) = &r.per_class {
        let standing: Vec<String> = (0..pc.gaps.len())
            .filter(|&k| gap_stands_out(pc, k))
            .map(|k| {
                format!(
                    "{} ({:+.1} points)",
                    pc.gaps[k].class,
                    100.0 * pc.gaps[k].gap
                )
            })
            .collect();
        let excluding_zero = pc
            .gaps
            .iter()
            .filter(|g| g.interval.is_some_and(|i| i.excludes(0.0)))
            .count();
        s.push_str(&format!(
            "- **Wide vs deep per class**: {} of {} classes have a gap whose interval excludes zero{}; {}.\n",
            excluding_zero,
            pc.gaps.len(),
            if pc.baseline.is_some() {
                format!(
                    ", against a largest seed-to-seed gap of {:.1} points",
                    100.0 * largest_seed_gap(pc)
                )
            } else {
                String::new()
            },
            if standing.is_empty() {
                "none stands out of the seed-to-seed noise".to_string()
            } else {
                format!("standing out of it: {}", standing.join(", "))
            },
        ));
        s.push_str(&format!(
            "  **No correction for multiple tests**: {} separate 95% intervals, so about {:.1} could exclude zero by chance alone.\n",
            pc.gaps.len(),
            0.05 * pc.gaps.len() as f64
        ));
    }
    if let Some(two) = r
        .cross
        .iter()
        .find(|x| x.label == "same architecture, two seeds")
    {
        s.push_str(&format!(
            "- **Seed-specific block**: {} vs {} is one pair of seeds{}; it shows the difference, not its spread.\n",
            two.model_a,
            two.model_b,
            two.diagonal_mean
                .map_or(String::new(), |d| format!(" (mean CKA of corresponding layers {d:.3})"))
        ));
    }
    s.push('\n');
    s
}
