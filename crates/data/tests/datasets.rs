//! The datasets on files the tests write in the exact published layouts.

use std::io::Write;
use std::path::Path;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::{DType, Device};
use repsim_data::*;

/// A CIFAR record: label byte(s), then a recognisable image (R plane = index, G = label, B = 7).
fn record(labels: &[u8], index: usize) -> Vec<u8> {
    let mut r = labels.to_vec();
    r.extend(std::iter::repeat_n((index % 256) as u8, 1024));
    r.extend(std::iter::repeat_n(*labels.last().unwrap(), 1024));
    r.extend(std::iter::repeat_n(7u8, 1024));
    r
}

fn write_cifar10(dir: &Path, per_batch: usize) {
    let folder = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&folder).unwrap();
    let mut index = 0;
    for name in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ] {
        let mut bytes = Vec::new();
        for _ in 0..per_batch {
            bytes.extend(record(&[(index % 10) as u8], index));
            index += 1;
        }
        std::fs::write(folder.join(name), bytes).unwrap();
    }
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    std::fs::write(folder.join("batches.meta.txt"), names).unwrap();
}

fn write_cifar100(dir: &Path, count: usize) {
    let folder = dir.join("cifar-100-binary");
    std::fs::create_dir_all(&folder).unwrap();
    for name in ["train.bin", "test.bin"] {
        let bytes: Vec<u8> = (0..count)
            .flat_map(|i| record(&[(i % 20) as u8, (i % 100) as u8], i))
            .collect();
        std::fs::write(folder.join(name), bytes).unwrap();
    }
    let fine: String = (0..100).map(|i| format!("fine{i}\n")).collect();
    let coarse: String = (0..20).map(|i| format!("coarse{i}\n")).collect();
    std::fs::write(folder.join("fine_label_names.txt"), fine).unwrap();
    std::fs::write(folder.join("coarse_label_names.txt"), coarse).unwrap();
}

/// Packs `dir/sub` into `archive` as the authors' .tar.gz does.
fn tar_gz(dir: &Path, sub: &str, archive: &Path) {
    let file = std::fs::File::create(archive).unwrap();
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    builder.append_dir_all(sub, dir.join(sub)).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
}

#[test]
fn cifar10_from_folder_and_archive() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path(), 6);
    let train = CifarDataset::cifar10(dir.path(), Split::Train).unwrap();
    assert_eq!(train.len(), 30);
    assert_eq!(train.class_names()[9], "truck");
    let item = train.get(13).unwrap();
    assert_eq!((item.label, item.height, item.width), (3, 32, 32));
    assert_eq!(
        (item.at(0, 5, 5), item.at(1, 31, 0), item.at(2, 0, 31)),
        (13, 3, 7)
    );
    let test =
        CifarDataset::cifar10(&dir.path().join("cifar-10-batches-bin"), Split::Test).unwrap();
    assert_eq!(test.len(), 6);
    assert_eq!(test.get(0).unwrap().at(0, 0, 0), 30);

    let archive = dir.path().join("cifar-10-binary.tar.gz");
    tar_gz(dir.path(), "cifar-10-batches-bin", &archive);
    let from_archive = CifarDataset::cifar10(&archive, Split::Train).unwrap();
    assert_eq!(from_archive.len(), 30);
    assert_eq!(from_archive.get(13).unwrap(), item);
    assert_eq!(from_archive.class_names(), train.class_names());
}

#[test]
fn cifar100_fine_and_coarse_from_folder_and_archive() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar100(dir.path(), 120);
    let fine = CifarDataset::cifar100(dir.path(), Split::Train, Cifar100Labels::Fine).unwrap();
    assert_eq!((fine.len(), fine.class_names().len()), (120, 100));
    assert_eq!(fine.get(105).unwrap().label, 5);
    assert_eq!(fine.class_names()[5], "fine5");
    let coarse = CifarDataset::cifar100(dir.path(), Split::Test, Cifar100Labels::Coarse).unwrap();
    assert_eq!(coarse.get(105).unwrap().label, 105 % 20);
    assert_eq!(coarse.class_names().len(), 20);
    let archive = dir.path().join("cifar-100-binary.tar.gz");
    tar_gz(dir.path(), "cifar-100-binary", &archive);
    let from_archive =
        CifarDataset::cifar100(&archive, Split::Train, Cifar100Labels::Fine).unwrap();
    assert_eq!(from_archive.get(105).unwrap(), fine.get(105).unwrap());
}

#[test]
fn bad_cifar_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path(), 2);
    let folder = dir.path().join("cifar-10-batches-bin");
    // Not a whole number of records.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(folder.join("test_batch.bin"))
        .unwrap();
    f.write_all(&[1, 2, 3]).unwrap();
    drop(f);
    let err = CifarDataset::cifar10(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test_batch.bin")
            && err.contains("6149 bytes")
            && err.contains("3 bytes over"),
        "{err}"
    );
    // A label out of range, with its record and offset.
    let mut bytes = std::fs::read(folder.join("data_batch_2.bin")).unwrap();
    bytes[3073] = 10;
    std::fs::write(folder.join("data_batch_2.bin"), bytes).unwrap();
    let err = CifarDataset::cifar10(dir.path(), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data_batch_2.bin")
            && err.contains("record 1")
            && err.contains("offset 3073")
            && err.contains("label 10"),
        "{err}"
    );
    // A missing file.
    std::fs::remove_file(folder.join("data_batch_4.bin")).unwrap();
    let err = CifarDataset::cifar10(dir.path(), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data_batch_4.bin") || err.contains("data_batch_2.bin"),
        "{err}"
    );
    // A truncated archive.
    let good = tempfile::tempdir().unwrap();
    write_cifar10(good.path(), 3);
    let archive = good.path().join("c.tar.gz");
    tar_gz(good.path(), "cifar-10-batches-bin", &archive);
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let err = CifarDataset::cifar10(&archive, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("c.tar.gz") && err.contains("truncated or corrupt"),
        "{err}"
    );
    // Not an archive at all.
    let junk = good.path().join("junk.tar.gz");
    std::fs::write(&junk, b"hello").unwrap();
    assert!(CifarDataset::cifar10(&junk, Split::Train)
        .unwrap_err()
        .to_string()
        .contains("junk.tar.gz"));
    // Nothing there.
    let err = CifarDataset::cifar10(&good.path().join("nope"), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    // A CIFAR-100 fine label out of range.
    let c100 = tempfile::tempdir().unwrap();
    write_cifar100(c100.path(), 3);
    let path = c100.path().join("cifar-100-binary/train.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3074 * 2 + 1] = 100;
    std::fs::write(&path, bytes).unwrap();
    let err = CifarDataset::cifar100(c100.path(), Split::Train, Cifar100Labels::Coarse)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("record 2") && err.contains("label 100"),
        "{err}"
    );
}

#[test]
fn shapes_are_deterministic_balanced_and_distinct() {
    let config = ShapesConfig::new().with_train_len(1000).with_test_len(200);
    let train = config.init(Split::Train).unwrap();
    let again = config.init(Split::Train).unwrap();
    assert_eq!(train.get(123).unwrap(), again.get(123).unwrap());
    let test = config.init(Split::Test).unwrap();
    assert_ne!(train.get(5).unwrap().pixels, test.get(5).unwrap().pixels);
    let other_seed = config.clone().with_seed(1).init(Split::Train).unwrap();
    assert_ne!(
        train.get(5).unwrap().pixels,
        other_seed.get(5).unwrap().pixels
    );
    assert_eq!(class_counts(&train).unwrap(), vec![100; 10]);
    assert_eq!(train.class_names().len(), 10);
    assert!(train.get(1000).is_err());
    let small = ShapesConfig::new().with_side(16).init(Split::Test).unwrap();
    assert_eq!(small.get(0).unwrap().pixels.len(), 3 * 16 * 16);
    assert!(ShapesConfig::new().with_side(4).init(Split::Train).is_err());
    assert!(ShapesConfig::new()
        .with_noise(-1.0)
        .init(Split::Train)
        .is_err());
}

/// Class means of the images differ between classes more than within a class's halves: each
/// class has its own structure. A nearest-class-mean classifier on raw pixels does better than
/// chance but far from perfectly: the dataset is learnable, not trivial.
#[test]
fn shapes_classes_differ_and_are_not_trivial() {
    let side = 16;
    let config = ShapesConfig::new()
        .with_side(side)
        .with_train_len(4000)
        .with_test_len(1000);
    let train = config.init(Split::Train).unwrap();
    let test = config.init(Split::Test).unwrap();
    // Features: a grey-level image normalised per image (colour is random, so it is noise).
    let features = |item: &ImageItem| -> Vec<f32> {
        let plane = side * side;
        let grey: Vec<f32> = (0..plane)
            .map(|i| {
                (0..3)
                    .map(|c| item.pixels[c * plane + i] as f32)
                    .sum::<f32>()
                    / 765.0
            })
            .collect();
        let mean = grey.iter().sum::<f32>() / plane as f32;
        let sd = (grey.iter().map(|g| (g - mean).powi(2)).sum::<f32>() / plane as f32)
            .sqrt()
            .max(1e-3);
        // Polarity is random too: use the absolute deviation.
        grey.iter().map(|g| ((g - mean) / sd).abs()).collect()
    };
    let mut means = vec![vec![0f32; side * side]; 10];
    for i in 0..train.len() {
        let item = train.get(i).unwrap();
        for (m, f) in means[item.label].iter_mut().zip(features(&item)) {
            *m += f / 400.0;
        }
    }
    let mut correct = 0;
    for i in 0..test.len() {
        let item = test.get(i).unwrap();
        let f = features(&item);
        let best = (0..10)
            .min_by(|a, b| {
                let d = |m: &Vec<f32>| m.iter().zip(&f).map(|(x, y)| (x - y).powi(2)).sum::<f32>();
                d(&means[*a]).total_cmp(&d(&means[*b]))
            })
            .unwrap();
        correct += usize::from(best == item.label);
    }
    let accuracy = correct as f64 / test.len() as f64;
    assert!(
        accuracy > 0.14,
        "nearest class mean: {accuracy} (chance is 0.1; 0.14 is 4 sd above it)"
    );
    assert!(accuracy < 0.9, "nearest class mean: {accuracy}: too easy");
}

#[test]
fn random_labels_replace_the_asked_fraction() {
    let shapes = ShapesConfig::new()
        .with_train_len(1000)
        .init(Split::Train)
        .unwrap();
    let randomised = RandomLabels::new(shapes.clone(), 0.3, 9).unwrap();
    let chosen = (0..1000).filter(|i| randomised.is_randomised(*i)).count();
    assert_eq!(chosen, 300);
    let changed = (0..1000)
        .filter(|i| randomised.label(*i).unwrap() != shapes.label(*i).unwrap())
        .count();
    // About 9 in 10 random labels differ from the true one.
    assert!((230..=300).contains(&changed), "{changed}");
    assert_eq!(
        randomised.get(7).unwrap().label,
        randomised.label(7).unwrap()
    );
    let again = RandomLabels::new(shapes.clone(), 0.3, 9).unwrap();
    assert!((0..1000).all(|i| again.label(i).unwrap() == randomised.label(i).unwrap()));
    let none = RandomLabels::new(shapes.clone(), 0.0, 9).unwrap();
    assert!((0..1000).all(|i| none.label(i).unwrap() == shapes.label(i).unwrap()));
    let all = RandomLabels::new(shapes.clone(), 1.0, 9).unwrap();
    assert_eq!((0..1000).filter(|i| all.is_randomised(*i)).count(), 1000);
    assert!(RandomLabels::new(shapes, 1.5, 0).is_err());
}

#[test]
fn batchers_make_tensors_of_the_right_shape_and_type() {
    let device = Device::flex();
    let shapes = ShapesConfig::new()
        .with_side(16)
        .with_train_len(64)
        .init(Split::Train)
        .unwrap();
    let items: Vec<ImageItem> = (0..8).map(|i| shapes.get(i).unwrap()).collect();
    let batch = ImageBatcher::new(ChannelStats::IDENTITY).batch(items.clone(), &device);
    assert_eq!(batch.images.dims(), [8, 3, 16, 16]);
    assert_eq!(batch.images.dtype(), DType::F32);
    assert_eq!(batch.targets.dims(), [8]);
    let targets: Vec<i64> = batch
        .targets
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .unwrap();
    assert_eq!(targets, (0..8).map(|i| i % 10).collect::<Vec<i64>>());
    let first: Vec<f32> = batch.images.into_data().try_to_vec().unwrap();
    assert!((first[0] - items[0].pixels[0] as f32 / 255.0).abs() < 1e-6);
    let stats = ChannelStats::compute(&shapes, None).unwrap();
    let normalised = ImageBatcher::new(stats).batch(items, &device);
    let mean: f32 = normalised.images.mean().into_scalar::<f32>();
    assert!(mean.abs() < 0.5, "{mean}");

    let sequences = RowSequences::new(shapes);
    assert_eq!(sequences.shape(), (16, 48));
    let seq = SequenceBatcher.batch((0..4).map(|i| sequences.get(i).unwrap()).collect(), &device);
    assert_eq!(seq.inputs.dims(), [4, 16, 48]);

    let corpus = TextCorpus::synthetic(Split::Train, 0, 5000, 32, 32).unwrap();
    let text = TextBatcher.batch((0..4).map(|i| corpus.get(i).unwrap()).collect(), &device);
    assert_eq!(text.inputs.dims(), [4, 32]);
    assert_eq!(text.targets.dims(), [4, 32]);

    // The burn data loader over shapes, shuffled with a seed, on two workers.
    let loader = data_loader(
        ShapesConfig::new()
            .with_side(16)
            .with_train_len(40)
            .init(Split::Train)
            .unwrap(),
        ImageBatcher::new(ChannelStats::IDENTITY),
        &LoaderConfig::new()
            .with_batch_size(16)
            .with_shuffle_seed(Some(3)),
        &device,
    );
    let sizes: Vec<usize> = loader.iter().map(|b| b.unwrap().images.dims()[0]).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 40);
}

#[test]
fn image_folders_decode_resize_and_report_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    for (class, color) in [("cats", [200u8, 10, 10]), ("dogs", [10, 10, 200])] {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        for i in 0..3 {
            let img = image::RgbImage::from_pixel(40 + i * 10, 30, image::Rgb(color));
            img.save(dir.path().join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    image::RgbImage::from_pixel(20, 20, image::Rgb([0, 255, 0]))
        .save(dir.path().join("dogs").join("x.jpg"))
        .unwrap();
    std::fs::write(dir.path().join("dogs").join("notes.txt"), "ignored").unwrap();
    let folder = ImageFolder::open(dir.path(), 16).unwrap();
    assert_eq!(folder.len(), 7);
    assert_eq!(
        folder.class_names(),
        &["cats".to_string(), "dogs".to_string()]
    );
    let cat = folder.get(0).unwrap();
    assert_eq!((cat.height, cat.width, cat.label), (16, 16, 0));
    assert_eq!((cat.at(0, 8, 8), cat.at(2, 8, 8)), (200, 10));
    assert_eq!(class_counts(&folder).unwrap(), vec![3, 4]);

    std::fs::write(dir.path().join("cats").join("broken.png"), b"not a png").unwrap();
    let err = ImageFolder::open(dir.path(), 16).unwrap_err().to_string();
    assert!(
        err.contains("broken.png") && err.contains("cannot decode"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(ImageFolder::open(empty.path(), 16)
        .unwrap_err()
        .to_string()
        .contains("no class sub-folders"));
}

#[test]
fn data_specs_parse_and_open() {
    assert_eq!("shapes".parse::<DataSpec>().unwrap(), DataSpec::Shapes);
    assert!(matches!(
        "cifar10=/x".parse::<DataSpec>().unwrap(),
        DataSpec::Cifar10(_)
    ));
    assert!("cifar10"
        .parse::<DataSpec>()
        .unwrap_err()
        .to_string()
        .contains("needs a path"));
    assert!("mnist=/x"
        .parse::<DataSpec>()
        .unwrap_err()
        .to_string()
        .contains("unknown dataset"));
    let d = DataSpec::Shapes
        .open(Split::Test, &ShapesConfig::new().with_test_len(50))
        .unwrap();
    assert_eq!(d.len(), 50);
    assert_eq!(d.image_size(), (32, 32));
}

#[test]
fn augmentation_keeps_shape_and_label() {
    let shapes = ShapesConfig::new()
        .with_train_len(10)
        .init(Split::Train)
        .unwrap();
    let augmented = Augmented::new(shapes.clone(), Augmentation::default(), 1);
    let a = augmented.get(3).unwrap();
    let original = shapes.get(3).unwrap();
    assert_eq!(
        (a.label, a.pixels.len()),
        (original.label, original.pixels.len())
    );
}
