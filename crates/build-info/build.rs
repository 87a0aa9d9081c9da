//! Finds the commit the binaries are built from, without running git (a clean checkout or a
//! source archive without `.git` still builds): `STRIPE_SYNC_COMMIT` when set (scripts/release
//! sets it), else the repository's HEAD read from its files, else unknown.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=STRIPE_SYNC_COMMIT");
    let (commit, exact) = match std::env::var("STRIPE_SYNC_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => (Some(commit.trim().to_owned()), true),
        _ => match git_head() {
            Some((commit, watched)) => {
                // A release build follows every commit. A debug build does not: watching HEAD
                // would rebuild every crate of the workspace after each commit, so it records
                // the commit of the build that ran this script, and says so.
                let release = std::env::var("PROFILE").as_deref() == Ok("release");
                if release {
                    for path in watched {
                        println!("cargo::rerun-if-changed={}", path.display());
                    }
                }
                (Some(commit), release)
            }
            None => (None, true),
        },
    };
    let line = match (commit, exact) {
        (Some(commit), true) => format!("commit {}", short(&commit)),
        (Some(commit), false) => format!("commit {} or later, debug build", short(&commit)),
        (None, _) => "commit unknown".to_owned(),
    };
    println!("cargo::rustc-env=STRIPE_SYNC_BUILD={line}");
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// HEAD's commit, and the files that change when it moves.
fn git_head() -> Option<(String, Vec<PathBuf>)> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let git = manifest
        .ancestors()
        .map(|dir| dir.join(".git"))
        .find(|git| git.exists())?;
    let git = if git.is_file() {
        // A worktree: `.git` is a file naming the real directory.
        let text = std::fs::read_to_string(&git).ok()?;
        let target = text.strip_prefix("gitdir:")?.trim();
        git.parent()?.join(target)
    } else {
        git
    };
    let head_path = git.join("HEAD");
    let head = std::fs::read_to_string(&head_path).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref:").map(str::trim) else {
        return is_commit(head).then(|| (head.to_owned(), vec![head_path]));
    };
    // A worktree keeps its refs in the common directory.
    let common = std::fs::read_to_string(git.join("commondir"))
        .map(|dir| git.join(dir.trim()))
        .unwrap_or_else(|_| git.clone());
    let loose = common.join(reference);
    let packed = common.join("packed-refs");
    let watched = vec![head_path, loose.clone(), packed.clone()];
    if let Ok(commit) = std::fs::read_to_string(&loose) {
        let commit = commit.trim();
        return is_commit(commit).then(|| (commit.to_owned(), watched));
    }
    let packed_refs = std::fs::read_to_string(&packed).ok()?;
    packed_refs
        .lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(_, name)| *name == reference)
        .filter(|(commit, _)| is_commit(commit))
        .map(|(commit, _)| (commit.to_owned(), watched))
}

fn is_commit(text: &str) -> bool {
    text.len() >= 40 && text.chars().all(|c| c.is_ascii_hexdigit())
}
