//! Renders known matrices and reads the images back.

use repsim_viz::{
    render_png, render_svg, save, BarChart, ColorMap, Figure, FigureSize, GridPanel, Heatmap,
    HeatmapGrid, HeatmapOptions, LinePlot, Series, SimilarityMatrix, VizError,
};

fn matrix(values: Vec<Vec<Option<f64>>>, prefix: &str) -> SimilarityMatrix {
    let rows = (0..values.len())
        .map(|i| format!("{prefix}.row{i}"))
        .collect::<Vec<_>>();
    let cols = (0..values[0].len())
        .map(|j| format!("{prefix}.col{j}"))
        .collect::<Vec<_>>();
    SimilarityMatrix {
        measure: repsim_viz::Measure::LINEAR_CKA,
        parameters: Default::default(),
        n_examples: Some(500),
        rows,
        cols,
        values,
        warnings: Vec::new(),
        significance: Default::default(),
    }
}

/// A 3 x 4 matrix with a 1, a 0, an undefined cell and values between.
fn known() -> SimilarityMatrix {
    matrix(
        vec![
            vec![Some(1.0), Some(0.5), Some(0.25), Some(0.0)],
            vec![Some(0.0), None, Some(0.75), Some(1.0)],
            vec![Some(0.3), Some(0.6), Some(0.9), None],
        ],
        "layer",
    )
}

fn decode(png: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("repsim writes a PNG the image crate reads")
        .to_rgb8()
}

fn rgb(c: plotters::style::RGBColor) -> [u8; 3] {
    [c.0, c.1, c.2]
}

#[test]
fn png_has_the_requested_size_and_cell_colours() {
    let m = known();
    for (colormap, origin_lower) in [
        (ColorMap::Magma, false),
        (ColorMap::Viridis, true),
        (ColorMap::Greys, false),
    ] {
        let options = HeatmapOptions {
            size: Some(FigureSize::new(6.0, 5.0, 100.0)),
            colormap,
            origin_lower,
            ..Default::default()
        };
        let heatmap = Heatmap::new(&m, options);
        let image = decode(&render_png(&heatmap).unwrap());
        assert_eq!(image.dimensions(), (600, 500));
        for (i, row) in m.values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let (x, y) = heatmap.cell_center(i, j).unwrap();
                let pixel = image.get_pixel(x, y).0;
                let expected = match v {
                    Some(1.0) => colormap.top(),
                    Some(0.0) => colormap.bottom(),
                    Some(v) => colormap.color(*v),
                    None => colormap.undefined(),
                };
                assert_eq!(
                    pixel,
                    rgb(expected),
                    "{colormap} cell ({i}, {j}) = {v:?} at ({x}, {y})"
                );
            }
        }
    }
}

#[test]
fn origin_lower_puts_row_zero_at_the_bottom() {
    let m = known();
    let top = Heatmap::new(&m, HeatmapOptions::default())
        .cell_center(0, 0)
        .unwrap();
    let lower = Heatmap::new(
        &m,
        HeatmapOptions {
            origin_lower: true,
            ..Default::default()
        },
    )
    .cell_center(0, 0)
    .unwrap();
    assert_eq!(top.0, lower.0);
    assert!(lower.1 > top.1, "row 0 moves down: {top:?} -> {lower:?}");
}

/// Counts dark (text-like) pixels in a rectangle.
fn dark_pixels(image: &image::RgbImage, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> usize {
    let mut count = 0;
    for y in y0..y1.min(image.height()) {
        for x in x0..x1.min(image.width()) {
            let p = image.get_pixel(x, y).0;
            if p.iter().all(|c| *c < 110) {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn title_and_label_areas_hold_text() {
    let m = known();
    let heatmap = Heatmap::new(
        &m,
        HeatmapOptions {
            size: Some(FigureSize::new(6.0, 5.0, 100.0)),
            row_title: Some("model A".into()),
            col_title: Some("model B".into()),
            ..Default::default()
        },
    );
    let image = decode(&render_png(&heatmap).unwrap());
    let (left, top, right, bottom) = heatmap.plot_area().unwrap();
    let (w, h) = image.dimensions();
    assert!(
        dark_pixels(&image, (0, 0, w, top.saturating_sub(2))) > 100,
        "title area is empty"
    );
    assert!(
        dark_pixels(&image, (0, top, left.saturating_sub(2), bottom)) > 100,
        "row labels are missing"
    );
    assert!(
        dark_pixels(&image, (left, bottom + 2, right, h)) > 100,
        "column labels are missing"
    );
    // An image without labels has none there.
    let bare = Heatmap::new(
        &m,
        HeatmapOptions {
            size: Some(FigureSize::new(6.0, 5.0, 100.0)),
            show_labels: false,
            ..Default::default()
        },
    );
    let image = decode(&render_png(&bare).unwrap());
    let (left, top, _, bottom) = bare.plot_area().unwrap();
    assert_eq!(
        dark_pixels(&image, (0, top, left.saturating_sub(2), bottom)),
        0
    );
}

#[test]
fn svg_holds_the_layer_names_and_title() {
    let m = known();
    let svg = render_svg(&Heatmap::new(&m, HeatmapOptions::default())).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
    for name in m.rows.iter().chain(&m.cols) {
        assert!(svg.contains(name.as_str()), "{name} missing from the SVG");
    }
    assert!(svg.contains("Linear CKA"));
}

#[test]
fn three_hundred_layers_render_with_thinned_labels() {
    let n = 300;
    let values = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| Some(1.0 - (i as f64 - j as f64).abs() / n as f64))
                .collect()
        })
        .collect();
    let m = matrix(values, "resnet.block");
    let heatmap = Heatmap::new(&m, HeatmapOptions::default());
    let image = decode(&render_png(&heatmap).unwrap());
    assert_eq!(image.dimensions(), heatmap.size().pixels());
    let (x, y) = heatmap.cell_center(150, 150).unwrap();
    assert_eq!(image.get_pixel(x, y).0, rgb(ColorMap::Magma.top()));
    let svg = render_svg(&heatmap).unwrap();
    let shown = m
        .rows
        .iter()
        .filter(|r| svg.contains(&format!("\n{r}\n")))
        .count();
    assert!(shown > 10 && shown < n, "{shown} of {n} row names shown");
}

#[test]
fn grid_labels_the_outer_panels_with_layer_names_and_axis_titles() {
    let names = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| format!("{prefix}.b{i}.out"))
            .collect::<Vec<_>>()
    };
    let m = SimilarityMatrix {
        measure: repsim_viz::Measure::LINEAR_CKA,
        parameters: Default::default(),
        n_examples: Some(10),
        rows: names("stage1", 6),
        cols: names("stage2", 5),
        values: vec![vec![Some(0.5); 5]; 6],
        warnings: vec![],
        significance: Default::default(),
    };
    let panels = (0..4)
        .map(|_| {
            Some(GridPanel {
                matrix: &m,
                caption: None,
            })
        })
        .collect();
    let mut grid = HeatmapGrid::new(panels, 2, 2);
    grid.row_title = Some("layers of A".into());
    grid.col_title = Some("layers of B".into());
    let svg = render_svg(&grid).unwrap();
    for text in [
        "stage1.b0.out",
        "stage2.b4.out",
        "layers of A",
        "layers of B",
    ] {
        assert!(svg.contains(text), "{text} missing");
    }
    if let Ok(dir) = std::env::var("REPSIM_RENDER_DIR") {
        std::fs::write(format!("{dir}/grid_labels.png"), render_png(&grid).unwrap()).unwrap();
    }
    // Without layer labels, no layer name is drawn.
    grid.layer_labels = false;
    assert!(!render_svg(&grid).unwrap().contains("stage1.b0.out"));
}

#[test]
fn grid_shares_one_scale_and_draws_every_panel() {
    let a = known();
    let b = matrix(
        vec![vec![Some(0.0), Some(1.0)], vec![Some(1.0), Some(0.0)]],
        "b",
    );
    let mut grid = HeatmapGrid::new(
        vec![
            Some(GridPanel {
                matrix: &a,
                caption: Some("ResNet-20".into()),
            }),
            Some(GridPanel {
                matrix: &b,
                caption: Some("ResNet-56".into()),
            }),
            None,
            Some(GridPanel {
                matrix: &a,
                caption: None,
            }),
        ],
        2,
        2,
    );
    grid.row_headers = vec!["depth 20".into(), "depth 56".into()];
    grid.col_headers = vec!["width x1".into(), "width x4".into()];
    grid.title = Some("Linear CKA".into());
    let image = decode(&render_png(&grid).unwrap());
    assert_eq!(image.dimensions(), grid.size().pixels());
    let svg = render_svg(&grid).unwrap();
    for text in ["depth 20", "width x4", "ResNet-56", "Linear CKA"] {
        assert!(svg.contains(text), "{text} missing");
    }
    // Both colour ends appear (panels a and b hold exact 0s and 1s).
    let pixels: Vec<[u8; 3]> = image.pixels().map(|p| p.0).collect();
    assert!(pixels.contains(&rgb(ColorMap::Magma.top())));
    assert!(pixels.contains(&rgb(ColorMap::Magma.bottom())));
    assert!(pixels.contains(&rgb(ColorMap::Magma.undefined())));
}

/// The key of cells that are not significant ends inside the drawing, in a grid and in a
/// single heatmap: its label is moved left rather than cut at the right edge.
#[test]
fn the_significance_key_stays_inside_the_image() {
    let mut a = matrix(
        vec![vec![Some(0.9), Some(0.02)], vec![Some(0.8), Some(0.01)]],
        "a",
    );
    a.significance.p_value = Some(vec![
        vec![Some(0.01), Some(0.6)],
        vec![Some(0.01), Some(0.7)],
    ]);
    let both = [a.clone(), a.clone()];
    let grid = HeatmapGrid::auto(&both);
    let heatmap = Heatmap::new(&a, HeatmapOptions::default());
    for (what, png, svg) in [
        (
            "grid",
            render_png(&grid).unwrap(),
            render_svg(&grid).unwrap(),
        ),
        (
            "heatmap",
            render_png(&heatmap).unwrap(),
            render_svg(&heatmap).unwrap(),
        ),
    ] {
        assert!(svg.contains("(permutations)"), "{what}: no key");
        let image = decode(&png);
        let (w, h) = image.dimensions();
        // No text touches the last columns of the image.
        assert_eq!(
            dark_pixels(&image, (w - 3, 0, w, h)),
            0,
            "{what}: something is cut at the right edge"
        );
    }
}

#[test]
fn curves_and_bars_render() {
    let series = (0..6)
        .map(|layer| Series {
            name: format!("layer{layer}"),
            band: (layer == 0).then(|| {
                (0..10)
                    .map(|e| (0.05 * e as f64, 0.1 + 0.05 * e as f64))
                    .collect()
            }),
            points: (0..10)
                .map(|e| {
                    (
                        e as f64,
                        1.0 - (-(e as f64) / (layer + 1) as f64).exp() * 0.9,
                    )
                })
                .collect(),
        })
        .collect();
    let mut plot = LinePlot::new(series, "Convergence", "epoch", "CKA with final");
    plot.colors = repsim_viz::LineColors::Gradient(ColorMap::Viridis);
    let image = decode(&render_png(&plot).unwrap());
    assert_eq!(image.dimensions(), plot.size().pixels());
    let svg = render_svg(&plot).unwrap();
    assert!(svg.contains("layer0") && svg.contains("layer5") && svg.contains("epoch"));

    let bars = BarChart::explained_variance(&[5.0, 3.0, 1.0, 0.5, 0.5], "PCA of stage1").unwrap();
    let svg = render_svg(&bars).unwrap();
    assert!(svg.contains("PCA of stage1") && svg.contains("cumulative"));
    render_png(&bars).unwrap();
}

#[test]
fn bad_inputs_are_clear_errors() {
    let empty = SimilarityMatrix {
        measure: repsim_viz::Measure::LINEAR_CKA,
        parameters: Default::default(),
        n_examples: None,
        rows: vec![],
        cols: vec![],
        values: vec![],
        warnings: vec![],
        significance: Default::default(),
    };
    let err = render_png(&Heatmap::new(&empty, HeatmapOptions::default())).unwrap_err();
    assert!(
        matches!(err, VizError::Empty(_)) && err.to_string().contains("0 rows"),
        "{err}"
    );

    let nan = matrix(vec![vec![Some(0.5), Some(f64::NAN)]], "n");
    let err = render_png(&Heatmap::new(&nan, HeatmapOptions::default()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("NaN") && err.contains("n.col1"), "{err}");

    let ragged = SimilarityMatrix {
        values: vec![vec![Some(0.5)]],
        ..matrix(vec![vec![Some(0.5), Some(0.5)]], "r")
    };
    assert!(render_png(&Heatmap::new(&ragged, HeatmapOptions::default())).is_err());

    let m = known();
    let dir = tempfile::tempdir().unwrap();
    let err = save(
        &Heatmap::new(&m, HeatmapOptions::default()),
        &dir.path().join("x.jpg"),
    )
    .unwrap_err();
    assert!(matches!(err, VizError::UnknownFormat { .. }), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing is left behind"
    );

    let err = render_png(&Heatmap::new(
        &m,
        HeatmapOptions {
            range: Some((1.0, 0.0)),
            ..Default::default()
        },
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("low < high"), "{err}");

    let grid = HeatmapGrid::new(vec![None], 1, 1);
    assert!(matches!(render_png(&grid).unwrap_err(), VizError::Empty(_)));
    assert!(BarChart::explained_variance(&[0.0, 0.0], "x").is_err());
    let plot = LinePlot::new(
        vec![Series {
            name: "s".into(),
            points: vec![(0.0, f64::INFINITY)],
            band: None,
        }],
        "t",
        "x",
        "y",
    );
    assert!(render_png(&plot)
        .unwrap_err()
        .to_string()
        .contains("not finite"));
}

#[test]
fn save_writes_png_and_svg_by_extension() {
    let m = known();
    let dir = tempfile::tempdir().unwrap();
    let heatmap = Heatmap::new(&m, HeatmapOptions::default());
    save(&heatmap, &dir.path().join("h.png")).unwrap();
    save(&heatmap, &dir.path().join("h.svg")).unwrap();
    let png = std::fs::read(dir.path().join("h.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(std::fs::read_to_string(dir.path().join("h.svg"))
        .unwrap()
        .contains("<svg"));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files remain: {names:?}");
}

/// A one-column grid's title longer than the figure is set smaller, not cut at the edges (the
/// training-set-size figure of a single-width run had its title cut off).
#[test]
fn a_long_title_fits_a_one_column_grid() {
    let a = known();
    let panels = (0..3)
        .map(|_| {
            Some(GridPanel {
                matrix: &a,
                caption: None,
            })
        })
        .collect();
    let mut grid = HeatmapGrid::new(panels, 3, 1);
    grid.title = Some(
        "ResNet-56: minibatch CKA within each model, by training-set size (a long title)".into(),
    );
    let png = render_png(&grid).unwrap();
    if let Ok(dir) = std::env::var("REPSIM_RENDER_DIR") {
        std::fs::write(format!("{dir}/long_title.png"), &png).unwrap();
    }
    let image = decode(&png);
    let (w, _) = image.dimensions();
    // The title's band: nothing dark in the first or the last 12 columns.
    let band = 60;
    assert_eq!(
        dark_pixels(&image, (0, 0, 12, band)),
        0,
        "title cut at the left edge"
    );
    assert_eq!(
        dark_pixels(&image, (w - 12, 0, w, band)),
        0,
        "title cut at the right edge"
    );
    assert!(dark_pixels(&image, (0, 0, w, band)) > 0, "no title drawn");
}
