//! No broken links in the documentation: every relative link of the README, the book
//! (`docs/book/src/`), the architecture page and the crates' READMEs names a file or folder of
//! the repository, and every page of the book is in its table of contents (`SUMMARY.md`), whose
//! entries all exist. Links to the web are not fetched (nothing is downloaded in the tests).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    // Read at run time: a test binary reused by another checkout must check that checkout.
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()))
}

/// Every Markdown file of the documentation.
fn documentation() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let root = root();
    let mut files = vec![
        root.join("README.md"),
        root.join("tests/fixtures/README.md"),
    ];
    walk(&root.join("docs"), &mut files);
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let readme = entry.path().join("README.md");
        if readme.is_file() {
            files.push(readme);
        }
    }
    files.sort();
    files
}

/// The targets of the Markdown links and images of `text` outside code blocks and inline code,
/// with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut fence = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        // Inline code spans are not links.
        let prose: String = line
            .split('`')
            .enumerate()
            .filter(|(k, _)| k % 2 == 0)
            .map(|(_, part)| part)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else {
                break;
            };
            found.push((i + 1, after[..end].trim().to_string()));
            rest = &after[end..];
        }
    }
    found
}

/// The relative links of `file` that name nothing, as `file:line: target`.
fn broken_links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let dir = file.parent().unwrap();
    links(&text)
        .into_iter()
        .filter(|(_, target)| {
            !(target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
                || target.starts_with('#'))
        })
        .filter(|(_, target)| {
            let path = target.split('#').next().unwrap_or_default();
            !dir.join(path).exists()
        })
        .map(|(line, target)| format!("{}:{line}: {target}", file.display()))
        .collect()
}

#[test]
fn every_relative_link_of_the_documentation_resolves() {
    let files = documentation();
    assert!(
        files.len() >= 20,
        "only {} documentation files",
        files.len()
    );
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_page_of_the_book_is_in_its_table_of_contents() {
    let src = root().join("docs/book/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: Vec<PathBuf> = links(&summary)
        .into_iter()
        .map(|(_, target)| src.join(target))
        .collect();
    for page in documentation()
        .into_iter()
        .filter(|p| p.starts_with(&src) && !p.ends_with("SUMMARY.md"))
    {
        assert!(
            listed.contains(&page),
            "{} is not in SUMMARY.md",
            page.display()
        );
    }
    assert!(listed.len() >= 15, "{listed:?}");
}

#[test]
fn the_link_check_finds_a_broken_link_and_passes_code_and_the_web() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("there.md"), "").unwrap();
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "[ok](there.md#a) [web](https://burn.dev) `[code](nowhere.md)` [gone](missing.md)\n\
         ```\n[fenced](nowhere.md)\n```\n![image](missing.png)\n",
    )
    .unwrap();
    let broken = broken_links(&page);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(broken[0].ends_with(":1: missing.md"), "{broken:?}");
    assert!(broken[1].ends_with(":5: missing.png"), "{broken:?}");
}
