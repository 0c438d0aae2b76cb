//! wide_vs_deep's figures and summary.

use repsim_viz::{
    save, GridPanel, Heatmap, HeatmapGrid, HeatmapOptions, LineColors, LinePlot, Series,
};

use super::results::{CrossResult, ModelResult, WideVsDeepAnalysis, WideVsDeepConfig};
use crate::error::Result;
use crate::experiments::harness::{markdown_table, Context, Figure, Provenance};

fn grid<'a>(
    config: &WideVsDeepConfig,
    panels: Vec<Option<GridPanel<'a>>>,
    title: &str,
) -> HeatmapGrid<'a> {
    let mut grid = HeatmapGrid::new(panels, config.depths.len(), config.widths.len());
    grid.row_headers = config.depths.iter().map(|d| format!("depth {d}")).collect();
    grid.col_headers = config
        .widths
        .iter()
        .map(|w| format!("width x{w}"))
        .collect();
    grid.title = Some(title.to_string());
    grid.origin_lower = true;
    grid.row_title = Some("layer".into());
    grid.col_title = Some("layer".into());
    grid
}

/// Draws the grids of within-model CKA (with and without the first PC), the first-PC
/// fractions and each cross-model comparison.
pub(super) fn draw(
    ctx: &Context,
    config: &WideVsDeepConfig,
    models: &[ModelResult],
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
    let panels = models
        .iter()
        .map(|m| {
            Some(GridPanel {
                matrix: &m.within_cka,
                caption: caption(m),
            })
        })
        .collect();
    save(
        &grid(config, panels, "Minibatch CKA within each model"),
        &ctx.out.join("within_cka.png"),
    )?;
    figures.push(Figure::new("within_cka.png", "Minibatch CKA between every pair of layers of each model (depth down, width across), as in Nguyen et al. 2021, Fig. 1. Captions: test accuracy and the longest block of layers with pairwise CKA above the threshold."));
    let panels = models
        .iter()
        .map(|m| {
            Some(GridPanel {
                matrix: &m.cka_first_pc_removed,
                caption: Some(format!(
                    "block {}/{}",
                    (m.block_share_pc_removed * m.within_cka.rows.len() as f64).round(),
                    m.within_cka.rows.len()
                )),
            })
        })
        .collect();
    save(
        &grid(
            config,
            panels,
            "CKA with each layer's first principal component removed",
        ),
        &ctx.out.join("within_cka_first_pc_removed.png"),
    )?;
    figures.push(Figure::new("within_cka_first_pc_removed.png", "Debiased CKA with each layer's first principal component projected out (Nguyen et al. 2021, Section 4)."));
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

/// `summary.md` up to the reproduce line.
pub(super) fn summary(
    c: &WideVsDeepConfig,
    r: &WideVsDeepAnalysis,
    p: &Provenance,
    figures: &[Figure],
) -> String {
    let mut s = format!(
        "# wide_vs_deep\n\nNguyen, Raghu & Kornblith 2021, *Do Wide and Deep Networks Learn the Same Things?*\n\n\
         CIFAR-layout ResNets of depths {:?} and widths {:?}, trained on `{}` ({} training / {} test images, {} px) \
         for {} epochs (SGD, momentum 0.9, weight decay {}, peak lr {} after {} epochs of linear warm-up, cosine, batch {}). \
         Within-model similarity is minibatch CKA (unbiased HSIC per batch of {}, {} shuffled passes over the {} test images). \
         Device: {}. Wall time of this run {:.0} s (training {:.0} s, analysis {:.0} s); the models' own training time, \
         summed from their metrics, {:.0} s.\n\n",
        c.depths, c.widths, p.data, c.train_count, c.test_count, c.side, c.epochs, c.weight_decay, c.lr, c.warmup_epochs, c.batch_size,
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
            let inside: Vec<f64> = m.first_pc_fraction[m.block.0..m.block.0 + m.block.1].to_vec();
            let outside: Vec<f64> = m
                .first_pc_fraction
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < m.block.0 || *i >= m.block.0 + m.block.1)
                .map(|(_, v)| *v)
                .collect();
            let mean = |v: &[f64]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.2}", v.iter().sum::<f64>() / v.len() as f64)
                }
            };
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
                    "{:.2} -> {:.2}",
                    m.block_share_pc_examples, m.block_share_pc_removed
                ),
                mean(&inside),
                mean(&outside),
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
            "share, 1st PC removed (debiased CKA, PC examples)",
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
    if let Some(pc) = &r.per_class {
        s.push_str(&format!(
            "**Per class** (the paper's Section 6), {} (wide) vs {} (deep), the pair of a wider-shallower and a narrower-deeper model \
             with the closest test accuracy. With one seed each and about a hundred test images per class, differences under about \
             10 points are within noise; the paper averages many seeds.\n\n",
            pc.wide, pc.deep
        ));
        let rows: Vec<Vec<String>> = pc
            .classes
            .iter()
            .map(|(name, n, w, d)| {
                vec![
                    name.clone(),
                    n.to_string(),
                    format!("{:.1}%", 100.0 * w),
                    format!("{:.1}%", 100.0 * d),
                    format!("{:+.1}", 100.0 * (w - d)),
                ]
            })
            .collect();
        s.push_str(&markdown_table(
            &[
                "class",
                "test images",
                "wide",
                "deep",
                "wide - deep (points)",
            ],
            &rows,
        ));
        s.push('\n');
    }
    for Figure { file, caption } in figures {
        s.push_str(&format!("![{file}]({file})\n\n*{caption}*\n\n"));
    }
    s
}
