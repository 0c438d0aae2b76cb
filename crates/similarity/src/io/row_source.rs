//! Row ranges of activation files, read in place: a comparison that streams its examples
//! (minibatch CKA, a shard of `repsim compare --shard`) holds one batch of rows per layer,
//! never a whole file, so files larger than memory can be compared.
//!
//! - `.npy` files (alone or a directory of them): rows are read at their offset with one
//!   seek and one read.
//! - `.npz` members stored uncompressed (`np.savez`): the same, at the member's offset inside
//!   the archive.
//! - `.npz` members compressed (`np.savez_compressed`): decompressed from the member's start;
//!   rows before the range are decompressed and dropped in a 64 kB buffer. Reading ranges in
//!   increasing order continues one decoder, so a full pass costs one decompression.
//!
//! Arrays in Fortran order are read too: a `.npy` file or stored member one feature column at
//! a time (each column's rows are contiguous), a compressed member decompressed whole once and
//! kept in memory (its columns span the whole stream). Rows come back in C order either way.
//!
//! Content identity (for merges of shards, [`crate::stream::shard`]): [`RowSource::fingerprint`] names
//! the whole content of every file cheaply (an `.npz` member by the CRC-32 its archive stores
//! for it; a `.npy` file by 64 evenly spread 4 KiB samples of its bytes), and
//! [`RowSource::read_rows_hashed`] feeds the exact bytes of the rows read, in C order, to an
//! xxh3 hash.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use npyz::{NpyHeader, Order};
/// The streaming hash [`RowSource::read_rows_hashed`] feeds (xxh3, 64 bits).
pub use xxhash_rust::xxh3::Xxh3;

use crate::error::{Result, SimilarityError};
use crate::io::files::{
    activation_layout, activation_path, check_same_count, ActivationPath, HostLayer, NpyLayout,
};

/// Where a layer's data lives.
enum Location {
    /// Raw rows at `offset` of `path` (a `.npy` file, or a stored `.npz` member).
    Raw { path: PathBuf, offset: u64 },
    /// A deflated `.npz` member: its compressed bytes at `offset` (`compressed` long), its npy
    /// data after `header` bytes of the decompressed stream.
    Deflated {
        path: PathBuf,
        offset: u64,
        compressed: u64,
        header: u64,
    },
}

/// A deflate decoder positioned at `row` of a member's data.
struct OpenDecoder {
    decoder: flate2::read::DeflateDecoder<std::io::Take<BufReader<File>>>,
    row: usize,
}

/// One layer of a [`RowSource`].
struct LayerSource {
    name: String,
    shape: Vec<usize>,
    is_f64: bool,
    little_endian: bool,
    /// Stored in Fortran (column-major) order.
    fortran: bool,
    location: Location,
    decoder: Mutex<Option<OpenDecoder>>,
    /// A compressed Fortran-order member, decompressed whole and put in C order (once).
    whole: Mutex<Option<Vec<u8>>>,
}

impl LayerSource {
    fn element_bytes(&self) -> usize {
        if self.is_f64 {
            8
        } else {
            4
        }
    }

    fn row_bytes(&self) -> usize {
        self.shape[1..].iter().product::<usize>() * self.element_bytes()
    }
}

/// The layers of an activation file or directory, read by rows.
pub struct RowSource {
    path: PathBuf,
    layers: Vec<LayerSource>,
    header_hash: String,
    bytes: u64,
    fingerprint: String,
}

impl RowSource {
    /// Opens `path` (a `.npy` file, a `.npz` archive or a directory of `.npy` files; see
    /// [`crate::read_activations`] for the naming and ordering of layers) and reads only the
    /// headers.
    pub fn open(path: &Path) -> Result<Self> {
        let kind = activation_path(path)?;
        let is_npz = matches!(kind, ActivationPath::Npz);
        let layers = match kind {
            ActivationPath::Directory(files) => files
                .iter()
                .map(|p| npy_layer(p))
                .collect::<Result<Vec<_>>>()?,
            ActivationPath::Npz => npz_layers(path)?,
            ActivationPath::Npy => vec![npy_layer(path)?],
        };
        let counts: Vec<(&str, usize)> = layers
            .iter()
            .map(|l| (l.name.as_str(), l.shape[0]))
            .collect();
        check_same_count(path, &counts)?;
        let description: Vec<String> = layers
            .iter()
            .map(|l| {
                format!(
                    "{}:{:?}:{}:{}",
                    l.name,
                    l.shape,
                    if l.is_f64 { "f8" } else { "f4" },
                    if l.little_endian { "<" } else { ">" }
                )
            })
            .collect();
        let (bytes, fingerprint) = content_fingerprint(path, is_npz, &layers)?;
        Ok(RowSource {
            path: path.to_path_buf(),
            header_hash: fnv1a64(&description.join("\n")),
            layers,
            bytes,
            fingerprint,
        })
    }

    /// The size in bytes of the file (of every `.npy` file, for a directory).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// A cheap identity of the whole content: `zip-crc32:` and an xxh3 of every member's name,
    /// size and stored CRC-32 (an `.npz`), or `sampled:` and an xxh3 of each `.npy` file's size
    /// and 64 samples of 4 KiB spread evenly over it. Two files whose fingerprints differ hold
    /// different data; a change confined to bytes between the samples of a `.npy` file is not
    /// seen here (the rows' own hashes, [`Self::read_rows_hashed`], see it).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The file or directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Examples (rows) in every layer.
    pub fn num_examples(&self) -> usize {
        self.layers[0].shape[0]
    }

    /// The layers' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.name.clone()).collect()
    }

    /// The layers' shapes as stored, in order.
    pub fn shapes(&self) -> Vec<Vec<usize>> {
        self.layers.iter().map(|l| l.shape.clone()).collect()
    }

    /// FNV-1a of every layer's name, shape and dtype (the example count included): two
    /// sources with the same hash hold the same layers of the same examples' count.
    pub fn header_hash(&self) -> &str {
        &self.header_hash
    }

    /// Rows `start .. start + len` of every layer, as f32.
    pub fn read_rows(&self, start: usize, len: usize) -> Result<Vec<HostLayer>> {
        self.read_rows_inner(start, len, None)
    }

    /// [`Self::read_rows`], feeding the rows' bytes as stored (every layer in order, its rows
    /// in C order) to `hash`.
    pub fn read_rows_hashed(
        &self,
        start: usize,
        len: usize,
        hash: &mut Xxh3,
    ) -> Result<Vec<HostLayer>> {
        self.read_rows_inner(start, len, Some(hash))
    }

    fn read_rows_inner(
        &self,
        start: usize,
        len: usize,
        mut hash: Option<&mut Xxh3>,
    ) -> Result<Vec<HostLayer>> {
        if start + len > self.num_examples() {
            return Err(SimilarityError::file(
                &self.path,
                format!(
                    "rows {start}..{} asked of {} examples",
                    start + len,
                    self.num_examples()
                ),
            ));
        }
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            layers.push({
                let mut bytes = vec![0u8; len * layer.row_bytes()];
                read_layer_rows(layer, start, len, &mut bytes).map_err(|message| {
                    SimilarityError::file(
                        &self.path,
                        format!(
                            "layer `{}`, rows {start}..{}: {message}",
                            layer.name,
                            start + len
                        ),
                    )
                })?;
                if let Some(hash) = hash.as_deref_mut() {
                    hash.update(&bytes);
                }
                let values = decode(&bytes, layer.is_f64, layer.little_endian);
                let mut shape = layer.shape.clone();
                shape[0] = len;
                HostLayer {
                    name: layer.name.clone(),
                    shape,
                    values,
                    stored_dtype: if layer.is_f64 { "f64" } else { "f32" },
                }
            });
        }
        Ok(layers)
    }
}

/// For each feature in C order, its column in a Fortran-order array of `shape`: the feature
/// at trailing index `(t1, .., tk)` is column `t1 + d1 t2 + d1 d2 t3 + ..`.
fn fortran_columns(shape: &[usize]) -> Vec<usize> {
    let trailing = &shape[1..];
    let count: usize = trailing.iter().product();
    (0..count)
        .map(|flat| {
            // Unravel `flat` in C order, ravel in Fortran order.
            let mut rest = flat;
            let mut index = vec![0usize; trailing.len()];
            for (k, d) in trailing.iter().enumerate().rev() {
                index[k] = rest % d;
                rest /= d;
            }
            let mut column = 0;
            for (k, d) in trailing.iter().enumerate().rev() {
                column = column * d + index[k];
            }
            column
        })
        .collect()
}

/// Puts `len` rows from per-column runs (`columns[c]` holds rows `0..len` of column `c`, each
/// `element` bytes) into C order.
fn columns_to_rows(shape: &[usize], columns: &[u8], len: usize, element: usize, out: &mut [u8]) {
    let order = fortran_columns(shape);
    let features = order.len();
    for row in 0..len {
        for (feature, &column) in order.iter().enumerate() {
            let from = (column * len + row) * element;
            let to = (row * features + feature) * element;
            out[to..to + element].copy_from_slice(&columns[from..from + element]);
        }
    }
}

/// Rows `start .. start + len` of a Fortran-order layer, in C order.
fn read_fortran_rows(
    layer: &LayerSource,
    start: usize,
    len: usize,
    out: &mut [u8],
) -> std::result::Result<(), String> {
    let n = layer.shape[0];
    let element = layer.element_bytes();
    let features = layer.row_bytes() / element;
    match &layer.location {
        Location::Raw { path, offset } => {
            // Column c's rows are contiguous at offset + (c n + start) * element.
            let mut file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
            let mut columns = vec![0u8; len * features * element];
            for (c, run) in columns.chunks_exact_mut(len * element).enumerate() {
                file.seek(SeekFrom::Start(offset + ((c * n + start) * element) as u64))
                    .map_err(|e| format!("cannot seek: {e}"))?;
                file.read_exact(run).map_err(|e| {
                    format!("cannot read ({e}): the file is shorter than its header says")
                })?;
            }
            columns_to_rows(&layer.shape, &columns, len, element, out);
            Ok(())
        }
        Location::Deflated {
            path,
            offset,
            compressed,
            header,
        } => {
            let mut slot = layer.whole.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                let mut decoder = open_member_data(path, *offset, *compressed, *header)?;
                let mut columns = vec![0u8; n * features * element];
                decoder.read_exact(&mut columns).map_err(|e| {
                    format!("cannot decompress ({e}): the member is shorter than its header says")
                })?;
                let mut rows = vec![0u8; columns.len()];
                columns_to_rows(&layer.shape, &columns, n, element, &mut rows);
                *slot = Some(rows);
            }
            let whole = slot.as_ref().map(Vec::as_slice).unwrap_or_default();
            let row_bytes = layer.row_bytes();
            out.copy_from_slice(&whole[start * row_bytes..(start + len) * row_bytes]);
            Ok(())
        }
    }
}

/// The size of the files behind `layers` and their content fingerprint (see
/// [`RowSource::fingerprint`]).
fn content_fingerprint(path: &Path, is_npz: bool, layers: &[LayerSource]) -> Result<(u64, String)> {
    let fail = |message: String| SimilarityError::file(path, message);
    if is_npz {
        let bytes = std::fs::metadata(path)
            .map_err(|e| fail(format!("cannot read: {e}")))?
            .len();
        let file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| fail(format!("not a valid .npz (zip) archive: {e}")))?;
        let mut hash = Xxh3::new();
        for index in 0..archive.len() {
            let entry = archive
                .by_index_raw(index)
                .map_err(|e| fail(format!("entry {index}: {e}")))?;
            hash.update(entry.name_raw());
            hash.update(&entry.size().to_le_bytes());
            hash.update(&entry.crc32().to_le_bytes());
        }
        return Ok((bytes, format!("zip-crc32:{:016x}", hash.digest())));
    }
    let mut files: Vec<&Path> = Vec::new();
    for layer in layers {
        if let Location::Raw { path, .. } = &layer.location {
            if !files.contains(&path.as_path()) {
                files.push(path);
            }
        }
    }
    let mut hash = Xxh3::new();
    let mut total = 0u64;
    const SAMPLES: u64 = 64;
    const SAMPLE_BYTES: u64 = 4096;
    let mut buffer = vec![0u8; SAMPLE_BYTES as usize];
    for file_path in files {
        let fail = |message: String| SimilarityError::file(file_path, message);
        let mut file = File::open(file_path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let size = file
            .metadata()
            .map_err(|e| fail(format!("cannot read: {e}")))?
            .len();
        total += size;
        hash.update(&size.to_le_bytes());
        let span = size.saturating_sub(SAMPLE_BYTES);
        for k in 0..SAMPLES {
            let at = span * k / (SAMPLES - 1);
            let take = SAMPLE_BYTES.min(size) as usize;
            file.seek(SeekFrom::Start(at))
                .and_then(|_| file.read_exact(&mut buffer[..take]))
                .map_err(|e| fail(format!("cannot read: {e}")))?;
            hash.update(&buffer[..take]);
        }
    }
    Ok((total, format!("sampled:{:016x}", hash.digest())))
}

fn read_layer_rows(
    layer: &LayerSource,
    start: usize,
    len: usize,
    out: &mut [u8],
) -> std::result::Result<(), String> {
    if layer.fortran {
        return read_fortran_rows(layer, start, len, out);
    }
    let row_bytes = layer.row_bytes() as u64;
    match &layer.location {
        Location::Raw { path, offset } => {
            let mut file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
            file.seek(SeekFrom::Start(offset + start as u64 * row_bytes))
                .map_err(|e| format!("cannot seek: {e}"))?;
            file.read_exact(out)
                .map_err(|e| format!("cannot read ({e}): the file is shorter than its header says"))
        }
        Location::Deflated {
            path,
            offset,
            compressed,
            header,
        } => {
            let mut slot = layer.decoder.lock().unwrap_or_else(|e| e.into_inner());
            // Going on with the open decoder when the range is ahead of it, else from the start.
            let open = match slot.take() {
                Some(open) if open.row <= start => slot.insert(open),
                _ => {
                    let decoder = open_member_data(path, *offset, *compressed, *header)?;
                    slot.insert(OpenDecoder { decoder, row: 0 })
                }
            };
            skip(&mut open.decoder, (start - open.row) as u64 * row_bytes)?;
            let result = open.decoder.read_exact(out).map_err(|e| {
                format!("cannot decompress ({e}): the member is shorter than its header says")
            });
            match result {
                Ok(()) => {
                    open.row = start + len;
                    Ok(())
                }
                Err(e) => {
                    *slot = None;
                    Err(e)
                }
            }
        }
    }
}

/// A decoder of the deflated member whose `compressed` bytes start at `offset` of `path`,
/// positioned after its `header` bytes (at the member's first row).
fn open_member_data(
    path: &Path,
    offset: u64,
    compressed: u64,
    header: u64,
) -> std::result::Result<flate2::read::DeflateDecoder<std::io::Take<BufReader<File>>>, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("cannot seek: {e}"))?;
    let mut decoder = flate2::read::DeflateDecoder::new(BufReader::new(file).take(compressed));
    skip(&mut decoder, header)?;
    Ok(decoder)
}

/// Reads and drops `count` bytes.
fn skip(reader: &mut impl Read, count: u64) -> std::result::Result<(), String> {
    let copied = std::io::copy(&mut reader.take(count), &mut std::io::sink())
        .map_err(|e| format!("cannot decompress: {e}"))?;
    if copied < count {
        return Err("the member is shorter than its header says".into());
    }
    Ok(())
}

fn decode(bytes: &[u8], is_f64: bool, little_endian: bool) -> Vec<f32> {
    if is_f64 {
        bytes
            .chunks_exact(8)
            .map(|c| {
                let raw: [u8; 8] = std::array::from_fn(|k| c[k]);
                (if little_endian {
                    f64::from_le_bytes(raw)
                } else {
                    f64::from_be_bytes(raw)
                }) as f32
            })
            .collect()
    } else {
        bytes
            .chunks_exact(4)
            .map(|c| {
                let raw: [u8; 4] = std::array::from_fn(|k| c[k]);
                if little_endian {
                    f32::from_le_bytes(raw)
                } else {
                    f32::from_be_bytes(raw)
                }
            })
            .collect()
    }
}

/// The header of an npy stream and its length in bytes (the data starts after it).
struct ParsedHeader {
    shape: Vec<usize>,
    is_f64: bool,
    little_endian: bool,
    fortran: bool,
    length: u64,
}

fn parse_header(reader: &mut impl Read) -> std::result::Result<ParsedHeader, String> {
    // Magic (6), version (2), header length (2 bytes in version 1, 4 in 2 and 3).
    let mut prefix = [0u8; 12];
    reader
        .read_exact(&mut prefix[..10])
        .map_err(|e| format!("not a valid .npy file: {e}"))?;
    if &prefix[..6] != b"\x93NUMPY" {
        return Err("not a valid .npy file: no NUMPY magic".into());
    }
    let (length_bytes, dict_len) = if prefix[6] == 1 {
        (2u64, u16::from_le_bytes([prefix[8], prefix[9]]) as u64)
    } else {
        reader
            .read_exact(&mut prefix[10..12])
            .map_err(|e| format!("not a valid .npy file: {e}"))?;
        (
            4u64,
            u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]) as u64,
        )
    };
    let mut dict = vec![0u8; dict_len as usize];
    reader
        .read_exact(&mut dict)
        .map_err(|e| format!("not a valid .npy file: {e}"))?;
    let mut whole = prefix[..(8 + length_bytes) as usize].to_vec();
    whole.extend_from_slice(&dict);
    let header = NpyHeader::from_reader(&mut whole.as_slice())
        .map_err(|e| format!("not a valid .npy file: {e}"))?;
    let NpyLayout {
        is_f64,
        little_endian,
        shape,
    } = activation_layout(&header)?;
    Ok(ParsedHeader {
        shape,
        is_f64,
        little_endian,
        fortran: header.order() == Order::Fortran,
        length: 8 + length_bytes + dict_len,
    })
}

fn data_bytes(header: &ParsedHeader) -> std::result::Result<u64, String> {
    header
        .shape
        .iter()
        .try_fold(if header.is_f64 { 8u64 } else { 4 }, |t, &d| {
            t.checked_mul(d as u64)
        })
        .ok_or_else(|| {
            format!(
                "shape {:?} overflows: a forged or corrupt header",
                header.shape
            )
        })
}

fn npy_layer(path: &Path) -> Result<LayerSource> {
    let fail = |message: String| SimilarityError::file(path, message);
    let file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let size = file
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    let header = parse_header(&mut BufReader::new(file)).map_err(fail)?;
    let needed = data_bytes(&header).map_err(fail)?;
    if header.length + needed > size {
        return Err(fail(format!(
            "the header declares shape {:?} but the file is {size} bytes: truncated",
            header.shape
        )));
    }
    Ok(LayerSource {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "layer".into()),
        shape: header.shape,
        is_f64: header.is_f64,
        little_endian: header.little_endian,
        fortran: header.fortran,
        location: Location::Raw {
            path: path.to_path_buf(),
            offset: header.length,
        },
        decoder: Mutex::new(None),
        whole: Mutex::new(None),
    })
}

fn npz_layers(path: &Path) -> Result<Vec<LayerSource>> {
    let fail = |message: String| SimilarityError::file(path, message);
    let file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| fail(format!("not a valid .npz (zip) archive: {e}")))?;
    let mut layers = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| fail(format!("entry {index}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let entry_name = entry
            .name()
            .map_err(|e| fail(format!("entry {index} has an unreadable name: {e}")))?
            .into_owned();
        let Some(name) = entry_name.strip_suffix(".npy") else {
            return Err(fail(format!("entry `{entry_name}` is not a .npy array")));
        };
        let name = name.to_string();
        let method = entry.compression();
        let compressed = entry.compressed_size();
        let size = entry.size();
        let header =
            parse_header(&mut entry).map_err(|m| fail(format!("array `{entry_name}`: {m}")))?;
        let needed = data_bytes(&header).map_err(|m| fail(format!("array `{entry_name}`: {m}")))?;
        if header.length + needed > size {
            return Err(fail(format!(
                "array `{entry_name}`: the header declares shape {:?} but the member is {size} bytes: truncated",
                header.shape
            )));
        }
        let offset = entry
            .data_start()
            .ok_or_else(|| fail(format!("array `{entry_name}`: no data offset")))?;
        let location = match method {
            zip::CompressionMethod::Stored => Location::Raw {
                path: path.to_path_buf(),
                offset: offset + header.length,
            },
            zip::CompressionMethod::Deflated => Location::Deflated {
                path: path.to_path_buf(),
                offset,
                compressed,
                header: header.length,
            },
            other => {
                return Err(fail(format!(
                    "array `{entry_name}`: compression {other} is not supported (np.savez and np.savez_compressed are)"
                )))
            }
        };
        layers.push(LayerSource {
            name,
            shape: header.shape,
            is_f64: header.is_f64,
            little_endian: header.little_endian,
            fortran: header.fortran,
            location,
            decoder: Mutex::new(None),
            whole: Mutex::new(None),
        });
    }
    Ok(layers)
}

fn fnv1a64(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::files::{read_activations, write_npy, write_npz};

    fn layer(name: &str, shape: Vec<usize>, seed: u32) -> HostLayer {
        let count = shape.iter().product::<usize>();
        HostLayer {
            name: name.into(),
            values: (0..count)
                .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / 4e9)
                .collect(),
            shape,
            stored_dtype: "f32",
        }
    }

    fn assert_rows_match(path: &Path) {
        let whole = read_activations(path).unwrap();
        let source = RowSource::open(path).unwrap();
        assert_eq!(
            source.names(),
            whole.iter().map(|l| l.name.clone()).collect::<Vec<_>>()
        );
        // Forward ranges continue a decoder; a range before the last one reopens it.
        for (start, len) in [(0, 3), (3, 4), (10, 7), (2, 1), (16, 1)] {
            let rows = source.read_rows(start, len).unwrap();
            for (got, all) in rows.iter().zip(&whole) {
                let d = all.num_features();
                assert_eq!(
                    got.values,
                    all.values[start * d..(start + len) * d],
                    "{start}+{len}"
                );
                assert_eq!(got.shape[0], len);
                assert_eq!(got.shape[1..], all.shape[1..]);
            }
        }
        assert!(source.read_rows(15, 3).is_err());
    }

    #[test]
    fn row_ranges_equal_the_whole_file_in_every_format() {
        let dir = tempfile::tempdir().unwrap();
        let layers = vec![
            layer("conv", vec![17, 2, 3, 3], 1),
            layer("fc", vec![17, 5], 2),
        ];
        write_npy(&dir.path().join("one.npy"), &layers[1]).unwrap();
        assert_rows_match(&dir.path().join("one.npy"));
        write_npz(&dir.path().join("both.npz"), &layers).unwrap();
        assert_rows_match(&dir.path().join("both.npz"));
        // np.savez_compressed: deflated members.
        let compressed = dir.path().join("compressed.npz");
        {
            let file = File::create(&compressed).unwrap();
            let mut archive = zip::ZipWriter::new(file);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for l in &layers {
                archive
                    .start_file(format!("{}.npy", l.name), options)
                    .unwrap();
                crate::io::files::write_npy_bytes(&mut archive, l).unwrap();
            }
            archive.finish().unwrap();
        }
        assert_rows_match(&compressed);
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        for l in &layers {
            write_npy(&folder.join(format!("{}.npy", l.name)), l).unwrap();
        }
        assert_rows_match(&folder);
    }

    #[test]
    fn a_truncated_file_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npy");
        write_npy(&path, &layer("t", vec![8, 4], 3)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let error = RowSource::open(&path).err().unwrap().to_string();
        assert!(error.contains("truncated"), "{error}");
    }
}
