//! Activation files: `.npy`, `.npz`, or a directory of `.npy` files.
//!
//! - `.npy`: one layer, named after the file stem; f32 or f64, rank >= 2, examples on dim 0.
//! - `.npz` (`np.savez` or `np.savez_compressed`): one layer per array, in archive order,
//!   named after the array.
//! - a directory: every `*.npy` in it, ordered by natural sort of the file names (`layer2`
//!   before `layer10`).
//!
//! The npy header (dtype, shape, memory order) is parsed by the `npyz` crate and the zip
//! container by the `zip` crate; the data itself is read in one piece and converted to f32,
//! the precision every measure computes in.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use npyz::{DType, NpyHeader, Order, TypeChar, WriterBuilder};

use crate::error::{Result, SimilarityError};
use crate::layer::Layer;

/// One layer's activations on the host, as read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct HostLayer {
    /// Layer name (file stem or npz array name).
    pub name: String,
    /// Shape as stored, examples first.
    pub shape: Vec<usize>,
    /// Values in C (row-major) order, converted to f32.
    pub values: Vec<f32>,
    /// The dtype the file stored (`f32` or `f64`).
    pub stored_dtype: &'static str,
}

impl HostLayer {
    /// Number of examples (dim 0).
    pub fn num_examples(&self) -> usize {
        self.shape[0]
    }

    /// Number of features (product of the dims past 0).
    pub fn num_features(&self) -> usize {
        self.shape[1..].iter().product()
    }

    /// The layer as an `N x D` matrix on `device` (consumes the host copy).
    pub fn into_layer(self, device: &Device) -> Layer {
        let shape = [self.num_examples(), self.num_features()];
        Layer {
            name: self.name,
            matrix: Tensor::from_data(TensorData::new(self.values, shape), device),
        }
    }

    /// The layer on `device`, a rank-4 `(N, C, H, W)` layer shaped by `mode` (see
    /// [`crate::io::conv`]); other ranks are flattened.
    pub fn into_layer_with(
        self,
        device: &Device,
        mode: crate::io::conv::ConvMode,
    ) -> Result<Layer> {
        if self.shape.len() != 4 || mode == crate::io::conv::ConvMode::Flatten {
            return Ok(self.into_layer(device));
        }
        let shape = [self.shape[0], self.shape[1], self.shape[2], self.shape[3]];
        let tensor = Tensor::<4>::from_data(TensorData::new(self.values, shape), device);
        crate::io::conv::conv_layer(self.name, tensor, mode)
    }

    /// The rows `start .. start + len` as an `len x D` matrix on `device` (copies them).
    pub fn rows_to_layer(&self, start: usize, len: usize, device: &Device) -> Layer {
        let d = self.num_features();
        let values = self.values[start * d..(start + len) * d].to_vec();
        Layer {
            name: self.name.clone(),
            matrix: Tensor::from_data(TensorData::new(values, [len, d]), device),
        }
    }
}

/// What an activation path holds, before any layer is read.
pub(crate) enum ActivationPath {
    /// A directory: its `.npy` files in natural order.
    Directory(Vec<PathBuf>),
    /// An `.npz` archive.
    Npz,
    /// One `.npy` file.
    Npy,
}

/// Tells a directory of `.npy` files (listed in natural order of their names), an `.npz` and an
/// `.npy` apart, refusing anything else (a FIFO, a device, another extension, an empty
/// directory).
pub(crate) fn activation_path(path: &Path) -> Result<ActivationPath> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| SimilarityError::file(path, format!("cannot read: {e}")))?;
    if metadata.is_dir() {
        return npy_files_in(path).map(ActivationPath::Directory);
    }
    if !metadata.is_file() {
        // A FIFO would block forever, a device never end.
        return Err(SimilarityError::file(
            path,
            "not a regular file (a FIFO, socket or device): activations are read from files or \
             directories",
        ));
    }
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase) {
        Some(ext) if ext == "npz" => Ok(ActivationPath::Npz),
        Some(ext) if ext == "npy" => Ok(ActivationPath::Npy),
        _ => Err(SimilarityError::file(
            path,
            "not an activation file: expected a .npy file, a .npz archive or a directory of .npy files",
        )),
    }
}

/// Refuses no layers, or layers of different example counts (`layers`: name and count).
pub(crate) fn check_same_count(path: &Path, layers: &[(&str, usize)]) -> Result<()> {
    let Some(&(first, n)) = layers.first() else {
        return Err(SimilarityError::file(path, "holds no layers"));
    };
    if let Some((other, count)) = layers.iter().find(|(_, count)| *count != n) {
        return Err(SimilarityError::file(
            path,
            format!(
                "layer `{other}` has {count} examples but layer `{first}` has {n}: every layer must hold the same examples"
            ),
        ));
    }
    Ok(())
}

/// Reads every layer of an activation file or directory (see the module docs).
pub fn read_activations(path: &Path) -> Result<Vec<HostLayer>> {
    let layers = match activation_path(path)? {
        ActivationPath::Directory(files) => files
            .iter()
            .map(|p| read_npy(p))
            .collect::<Result<Vec<_>>>()?,
        ActivationPath::Npz => read_npz(path)?,
        ActivationPath::Npy => vec![read_npy(path)?],
    };
    let counts: Vec<(&str, usize)> = layers
        .iter()
        .map(|l| (l.name.as_str(), l.num_examples()))
        .collect();
    check_same_count(path, &counts)?;
    Ok(layers)
}

/// Reads one `.npy` file as a layer named after its stem.
pub fn read_npy(path: &Path) -> Result<HostLayer> {
    let file =
        File::open(path).map_err(|e| SimilarityError::file(path, format!("cannot open: {e}")))?;
    let size = file
        .metadata()
        .map_err(|e| SimilarityError::file(path, format!("cannot read: {e}")))?
        .len();
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "layer".into());
    read_npy_stream(BufReader::new(file), name, size)
        .map_err(|message| SimilarityError::file(path, message))
}

/// The `.npy` files of `dir`, in natural order of their names (`layer2` before `layer10`).
fn npy_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SimilarityError::file(dir, format!("cannot list directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")))
        .collect();
    if files.is_empty() {
        return Err(SimilarityError::file(dir, "directory holds no .npy files"));
    }
    files.sort_by(|a, b| {
        natord::compare(
            &a.file_name().unwrap_or_default().to_string_lossy(),
            &b.file_name().unwrap_or_default().to_string_lossy(),
        )
    });
    Ok(files)
}

fn read_npz(path: &Path) -> Result<Vec<HostLayer>> {
    let file =
        File::open(path).map_err(|e| SimilarityError::file(path, format!("cannot open: {e}")))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| SimilarityError::file(path, format!("not a valid .npz (zip) archive: {e}")))?;
    let mut layers = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive
            .by_index(index)
            .map_err(|e| SimilarityError::file(path, format!("entry {index}: {e}")))?;
        let entry_name = entry
            .name()
            .map_err(|e| {
                SimilarityError::file(path, format!("entry {index} has an unreadable name: {e}"))
            })?
            .into_owned();
        if entry.is_dir() {
            continue;
        }
        let Some(name) = entry_name.strip_suffix(".npy") else {
            return Err(SimilarityError::file(
                path,
                format!("entry `{entry_name}` is not a .npy array"),
            ));
        };
        let name = name.to_string();
        // The entry's declared size bounds the data; deflate cannot expand more than ~1032:1,
        // so a forged declared size is caught by the compressed size.
        let declared = entry.size();
        let bound = declared.min(entry.compressed_size().saturating_mul(1032).max(1 << 16));
        let layer = read_npy_stream(entry, name, bound).map_err(|message| {
            SimilarityError::file(path, format!("array `{entry_name}`: {message}"))
        })?;
        layers.push(layer);
    }
    Ok(layers)
}

/// What an activation array's `.npy` header declares: float32 or float64 and its byte order,
/// and a shape of rank >= 2 without an empty dimension (anything else is refused by name).
pub(crate) struct NpyLayout {
    pub(crate) is_f64: bool,
    pub(crate) little_endian: bool,
    pub(crate) shape: Vec<usize>,
}

/// The layout of `header`, or why it is not an activation array.
pub(crate) fn activation_layout(header: &NpyHeader) -> std::result::Result<NpyLayout, String> {
    let (is_f64, little_endian) = match header.dtype() {
        DType::Plain(ts)
            if ts.type_char() == TypeChar::Float && matches!(ts.size_field(), 4 | 8) =>
        {
            (
                ts.size_field() == 8,
                ts.endianness() != npyz::Endianness::Big,
            )
        }
        DType::Plain(ts) => {
            return Err(format!(
                "unsupported dtype `{ts}`: activations must be float32 or float64"
            ))
        }
        other => {
            return Err(format!(
                "unsupported dtype {}: activations must be float32 or float64",
                other.descr()
            ))
        }
    };
    let shape: Vec<usize> = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} is too large")))
        .collect::<std::result::Result<_, _>>()?;
    if shape.len() < 2 {
        return Err(format!(
            "array of shape {shape:?} has rank {}: activations need rank >= 2 (examples x features)",
            shape.len()
        ));
    }
    if shape.contains(&0) {
        return Err(format!("array of shape {shape:?} is empty"));
    }
    Ok(NpyLayout {
        is_f64,
        little_endian,
        shape,
    })
}

/// Parses a `.npy` stream of at most `size` bytes: header by `npyz`, then the data in one
/// read. The declared shape is checked against `size` and the machine's memory before any
/// allocation, so a forged header is an error, not an abort.
fn read_npy_stream(
    mut reader: impl Read,
    name: String,
    size: u64,
) -> std::result::Result<HostLayer, String> {
    let header =
        NpyHeader::from_reader(&mut reader).map_err(|e| format!("not a valid .npy file: {e}"))?;
    let NpyLayout {
        is_f64,
        little_endian,
        shape,
    } = activation_layout(&header)?;
    let item_bytes = if is_f64 { 8 } else { 4 };
    let data_bytes = shape
        .iter()
        .try_fold(item_bytes, |total: usize, &d| total.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows: a forged or corrupt header"))?;
    if data_bytes as u64 > size {
        return Err(format!(
            "the header declares shape {shape:?} ({}) but the data holds at most {}: \
             truncated, or a forged header",
            human_bytes(data_bytes as u64),
            human_bytes(size)
        ));
    }
    // f64 files are read whole, then converted: 1.5x the f32 size at the peak.
    let needed = data_bytes as u64 + if is_f64 { data_bytes as u64 / 2 } else { 0 };
    if let Some(available) = available_memory() {
        if needed > available {
            return Err(format!(
                "shape {shape:?} needs {} of memory, but {} is available",
                human_bytes(needed),
                human_bytes(available)
            ));
        }
    }
    let count = data_bytes / item_bytes;
    let mut values = if is_f64 {
        let mut bytes = vec![0u8; count * 8];
        read_data(&mut reader, &mut bytes, &shape)?;
        decode_f64(&bytes, little_endian)?
    } else {
        // f32 is read straight into the output, then byte-swapped if the file is big-endian.
        let mut values = vec![0f32; count];
        read_data(&mut reader, bytemuck::cast_slice_mut(&mut values), &shape)?;
        if little_endian != cfg!(target_endian = "little") {
            values
                .iter_mut()
                .for_each(|v| *v = f32::from_bits(v.to_bits().swap_bytes()));
        }
        values
    };
    if header.order() == Order::Fortran {
        values = fortran_to_c_order(&values, &shape);
    }
    Ok(HostLayer {
        name,
        shape,
        values,
        stored_dtype: if is_f64 { "f64" } else { "f32" },
    })
}

/// `MemAvailable` of `/proc/meminfo` in bytes (Linux), else `None`.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `1.5 GB`, `340 MB`, `12 kB`.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} bytes")
    }
}

fn read_data(
    reader: &mut impl Read,
    buffer: &mut [u8],
    shape: &[usize],
) -> std::result::Result<(), String> {
    reader.read_exact(buffer).map_err(|e| {
        format!(
            "data is truncated: shape {shape:?} needs {} bytes ({e})",
            buffer.len()
        )
    })
}

/// Decodes raw little- or big-endian f64 bytes to f32; a value too large for f32 is an error
/// rather than a silent infinity.
fn decode_f64(bytes: &[u8], little_endian: bool) -> std::result::Result<Vec<f32>, String> {
    let mut out = Vec::with_capacity(bytes.len() / 8);
    for (i, chunk) in bytes.chunks_exact(8).enumerate() {
        let raw: [u8; 8] = std::array::from_fn(|k| chunk[k]);
        let v = if little_endian {
            f64::from_le_bytes(raw)
        } else {
            f64::from_be_bytes(raw)
        };
        let narrowed = v as f32;
        if v.is_finite() && !narrowed.is_finite() {
            return Err(format!(
                "value {v:e} at flat index {i} is outside the f32 range"
            ));
        }
        out.push(narrowed);
    }
    Ok(out)
}

/// Reorders a Fortran-order (column-major) array to C order.
fn fortran_to_c_order(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let rank = shape.len();
    // Fortran strides: the first index varies fastest.
    let mut f_strides = vec![1usize; rank];
    for k in 1..rank {
        f_strides[k] = f_strides[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(values.len());
    let mut index = vec![0usize; rank];
    for _ in 0..values.len() {
        let offset: usize = index.iter().zip(&f_strides).map(|(i, s)| i * s).sum();
        out.push(values[offset]);
        // Advance the C-order multi-index (last index fastest).
        for k in (0..rank).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// Writes layers as an uncompressed `.npz` (f32), the format `np.load` reads; used by tests,
/// benchmarks and users exporting activations from burn. Written atomically (repsim's one
/// writer, `repsim_durable`): a failure or a kill leaves the previous file or none.
pub fn write_npz(path: &Path, layers: &[HostLayer]) -> Result<()> {
    repsim_durable::write_via(path, |temporary| write_npz_into(temporary, path, layers))
}

/// The `.npz` archive of `layers` into the file `file` (messages name `path`).
fn write_npz_into(file: &Path, path: &Path, layers: &[HostLayer]) -> Result<()> {
    let file = File::create(file)
        .map_err(|e| SimilarityError::file(path, format!("cannot create: {e}")))?;
    let mut archive = zip::ZipWriter::new(std::io::BufWriter::new(QuietAfterError::new(file)));
    for layer in layers {
        write_npz_entry(&mut archive, layer).map_err(|e| SimilarityError::file(path, e))?;
    }
    archive
        .finish()
        .and_then(|mut out| out.flush().map_err(zip::result::ZipError::Io))
        .map_err(|e| SimilarityError::file(path, format!("cannot finish archive: {e}")))?;
    Ok(())
}

/// The file under an `.npz` writer: its first error is returned, and after that it accepts
/// and discards everything. The zip writer finishes the archive when dropped and prints that
/// second failure to stderr (zip 9, without a newline, glued to the caller's message): on a
/// full disk, the caller has already reported the first error, and the file is removed.
struct QuietAfterError {
    file: File,
    failed: bool,
}

impl QuietAfterError {
    fn new(file: File) -> Self {
        QuietAfterError {
            file,
            failed: false,
        }
    }

    fn check<T>(&mut self, result: std::io::Result<T>, otherwise: T) -> std::io::Result<T> {
        if self.failed {
            return Ok(otherwise);
        }
        result.inspect_err(|_| self.failed = true)
    }
}

impl std::io::Write for QuietAfterError {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = if self.failed {
            Ok(0)
        } else {
            self.file.write(buf)
        };
        self.check(result, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = if self.failed {
            Ok(())
        } else {
            self.file.flush()
        };
        self.check(result, ())
    }
}

impl std::io::Seek for QuietAfterError {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let result = if self.failed {
            Ok(0)
        } else {
            self.file.seek(to)
        };
        self.check(result, 0)
    }
}

type NpzWriter = zip::ZipWriter<std::io::BufWriter<QuietAfterError>>;

fn write_npz_entry(archive: &mut NpzWriter, layer: &HostLayer) -> std::result::Result<(), String> {
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(layer.values.len() * 4 > u32::MAX as usize / 2);
    archive
        .start_file(format!("{}.npy", layer.name), options)
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    write_npy_bytes(&mut bytes, layer).map_err(|e| e.to_string())?;
    archive.write_all(&bytes).map_err(|e| e.to_string())
}

/// Writes one layer as `.npy` (f32, C order) into `out`.
pub fn write_npy_bytes(out: &mut impl std::io::Write, layer: &HostLayer) -> std::io::Result<()> {
    let shape: Vec<u64> = layer.shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(out)
        .begin_nd()?;
    writer.extend(layer.values.iter().copied())?;
    writer.finish()
}

/// Writes one layer as a `.npy` file (f32), atomically (see [`write_npz`]).
pub fn write_npy(path: &Path, layer: &HostLayer) -> Result<()> {
    repsim_durable::write_with(path, |mut out| write_npy_bytes(&mut out, layer))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, shape: &[usize]) -> HostLayer {
        let count = shape.iter().product();
        HostLayer {
            name: name.into(),
            shape: shape.to_vec(),
            values: (0..count).map(|i| i as f32 * 0.5).collect(),
            stored_dtype: "f32",
        }
    }

    /// On a full disk, `write_npz` returns the error and nothing else is printed: the zip
    /// writer, dropped after the error, used to print its own second failure to stderr,
    /// glued to the caller's message. The writing happens in a child process (this test
    /// binary, filtered to this test) so that its stderr can be read.
    #[test]
    fn a_full_disk_gives_an_error_and_no_message_of_the_zip_writer() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        if std::env::var_os("REPSIM_NPZ_TO_DEV_FULL").is_some() {
            let layers = [layer("a", &[64, 512]), layer("b", &[64, 64])];
            let full = Path::new("/dev/full");
            let e = write_npz_into(full, full, &layers).unwrap_err();
            assert!(e.to_string().contains("/dev/full"), "{e}");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "files::tests::a_full_disk_gives_an_error_and_no_message_of_the_zip_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("REPSIM_NPZ_TO_DEV_FULL", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("ZipWriter"), "{stderr}");
    }

    #[test]
    fn npy_round_trip_keeps_name_shape_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conv1.npy");
        let original = layer("conv1", &[3, 2, 2]);
        write_npy(&path, &original).unwrap();
        let back = read_activations(&path).unwrap();
        assert_eq!(back, vec![original]);
    }

    #[test]
    fn npz_keeps_archive_order_and_directories_sort_naturally() {
        let dir = tempfile::tempdir().unwrap();
        let npz = dir.path().join("acts.npz");
        let layers = vec![layer("zeta", &[4, 3]), layer("alpha", &[4, 2, 2])];
        write_npz(&npz, &layers).unwrap();
        let names: Vec<_> = read_activations(&npz)
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["zeta", "alpha"]);

        let sub = dir.path().join("layers");
        std::fs::create_dir(&sub).unwrap();
        for name in ["layer10", "layer2", "layer1"] {
            write_npy(&sub.join(format!("{name}.npy")), &layer(name, &[4, 2])).unwrap();
        }
        let names: Vec<_> = read_activations(&sub)
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["layer1", "layer2", "layer10"]);
    }

    #[test]
    fn big_endian_and_f64_files_read_as_f32() {
        let dir = tempfile::tempdir().unwrap();
        for (descr, path) in [
            ("'>f4'", "be32.npy"),
            ("'>f8'", "be64.npy"),
            ("'<f8'", "le64.npy"),
        ] {
            let mut bytes = Vec::new();
            let options = npyz::WriteOptions::new()
                .dtype(DType::parse(descr).unwrap())
                .shape(&[2, 3]);
            if descr.contains('4') {
                let mut w = options.writer(&mut bytes).begin_nd().unwrap();
                w.extend([0.5f32, -1.0, 2.0, 3.5, 1e-3, 7.0]).unwrap();
                w.finish().unwrap();
            } else {
                let mut w = npyz::WriteOptions::new()
                    .dtype(DType::parse(descr).unwrap())
                    .shape(&[2, 3])
                    .writer(&mut bytes)
                    .begin_nd()
                    .unwrap();
                w.extend([0.5f64, -1.0, 2.0, 3.5, 1e-3, 7.0]).unwrap();
                w.finish().unwrap();
            }
            let path = dir.path().join(path);
            std::fs::write(&path, bytes).unwrap();
            let layer = read_npy(&path).unwrap();
            assert_eq!(layer.shape, [2, 3]);
            assert_eq!(layer.values, [0.5, -1.0, 2.0, 3.5, 1e-3, 7.0], "{descr}");
        }
        let mut bytes = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[2, 2])
            .writer(&mut bytes)
            .begin_nd()
            .unwrap();
        w.extend([1.0f64, 1e300, 2.0, 3.0]).unwrap();
        w.finish().unwrap();
        let path = dir.path().join("huge.npy");
        std::fs::write(&path, bytes).unwrap();
        let err = read_npy(&path).unwrap_err().to_string();
        assert!(
            err.contains("outside the f32 range") && err.contains("index 1"),
            "{err}"
        );
    }

    #[test]
    fn fortran_order_is_reordered_to_c_order() {
        // [[0, 1, 2], [3, 4, 5]] stored column-major is 0 3 1 4 2 5.
        let c = fortran_to_c_order(&[0.0, 3.0, 1.0, 4.0, 2.0, 5.0], &[2, 3]);
        assert_eq!(c, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn forged_headers_are_errors_before_any_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let header = |shape: &str| {
            let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
            let mut text = dict.into_bytes();
            while (10 + text.len() + 1) % 64 != 0 {
                text.push(b' ');
            }
            text.push(b'\n');
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            bytes.extend((text.len() as u16).to_le_bytes());
            bytes.extend(text);
            bytes.extend([0u8; 64]);
            bytes
        };
        for (shape, needle) in [
            ("(1000000000000, 1000000)", "forged header"),
            ("(4294967296, 4294967296, 4294967296)", "overflows"),
        ] {
            let path = dir.path().join("forged.npy");
            std::fs::write(&path, header(shape)).unwrap();
            let err = read_activations(&path).unwrap_err().to_string();
            assert!(
                err.contains("forged.npy") && err.contains(needle),
                "{shape}: {err}"
            );
            // The same inside an .npz archive.
            let npz = dir.path().join("forged.npz");
            let mut zip = zip::ZipWriter::new(File::create(&npz).unwrap());
            zip.start_file("layer.npy", zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut zip, &header(shape)).unwrap();
            zip.finish().unwrap();
            let err = read_activations(&npz).unwrap_err().to_string();
            assert!(
                err.contains("layer.npy") && err.contains(needle),
                "{shape}: {err}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_instead_of_read_forever() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("acts.npy");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.map(|s| s.success()).unwrap_or(false) {
            return; // no mkfifo on this machine
        }
        let err = read_activations(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn bad_files_give_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.npy");
        assert!(read_activations(&missing)
            .unwrap_err()
            .to_string()
            .contains("missing.npy"));

        let garbage = dir.path().join("garbage.npy");
        std::fs::write(&garbage, b"not a numpy file at all").unwrap();
        let err = read_activations(&garbage).unwrap_err().to_string();
        assert!(
            err.contains("garbage.npy") && err.contains("not a valid .npy"),
            "{err}"
        );

        let truncated = dir.path().join("truncated.npy");
        let mut bytes = Vec::new();
        write_npy_bytes(&mut bytes, &layer("t", &[10, 10])).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() - 8]).unwrap();
        let err = read_activations(&truncated).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");

        let ints = dir.path().join("ints.npy");
        let mut bytes = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[2, 2])
            .writer(&mut bytes)
            .begin_nd()
            .unwrap();
        w.extend([1i32, 2, 3, 4]).unwrap();
        w.finish().unwrap();
        std::fs::write(&ints, &bytes).unwrap();
        let err = read_activations(&ints).unwrap_err().to_string();
        assert!(err.contains("unsupported dtype `<i4`"), "{err}");

        let vector = dir.path().join("vector.npy");
        write_npy(&vector, &layer("v", &[5])).unwrap_or(());
        let err = read_activations(&vector).unwrap_err().to_string();
        assert!(err.contains("rank"), "{err}");
    }
}
