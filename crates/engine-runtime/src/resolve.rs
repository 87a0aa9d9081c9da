//! Finding the command that runs a connector. First match wins: the command map, the project's
//! binaries next to the engine, PATH, then (when enabled) a package-registry launcher.
//!
//! Registry names: `npm:<package>[@version]` runs through `npx --yes`, `pypi:<package>[==version]`
//! through `uvx --from` (or `pipx run --spec`), the executable being the package name without an
//! `airbyte-` prefix. A bare name, when registries are enabled, tries `@stripe/sync-<role>-<name>`
//! on npm first, then `airbyte-<role>-<name>` on PyPI (`--connectors-from-npm`: npm only, the
//! reference implementation's lookup). Such names may also be the value of a
//! command-map key, which pins a version. A registry candidate counts only once it answers
//! `spec` (see [`crate::connector::Connector::open`]); every candidate tried is named in the
//! error when none does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde_json::Value;
use sync_connector::json_arg::json_or_file;

use crate::args::ResolverArgs;

pub(crate) use sync_protocol::Role;

/// The executable names a connector of this role may have.
fn executable_names(role: Role, name: &str) -> Vec<String> {
    match role {
        Role::Source => vec![format!("source-{name}")],
        Role::Destination => vec![format!("dest-{name}"), format!("destination-{name}")],
    }
}

/// Where a connector command came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--connectors-from-command-map`.
    CommandMap,
    /// Beside the engine's own executable.
    Bundled,
    /// On `PATH`.
    Path,
    /// A package fetched by a launcher: (launcher, package spec).
    Registry(&'static str, String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::CommandMap => f.write_str("command map"),
            Origin::Bundled => f.write_str("bundled with the engine"),
            Origin::Path => f.write_str("PATH"),
            Origin::Registry(launcher, package) => write!(f, "{package} via {launcher}"),
        }
    }
}

/// A runnable connector command.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `source-stripe`, `destination-faker`…: the name messages use.
    pub display: String,
    /// The program run.
    pub program: String,
    /// Its arguments before the subcommand.
    pub args: Vec<String>,
    /// Where it was found.
    pub origin: Origin,
}

impl Resolved {
    /// The command as a shell would run it, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A connector named by its package in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RegistryName {
    /// `@scope/name[@version]`
    Npm(String),
    /// `name[==version]`
    PyPi(String),
}

impl RegistryName {
    fn parse(name: &str) -> Option<RegistryName> {
        if let Some(package) = name.strip_prefix("npm:").filter(|p| !p.is_empty()) {
            return Some(RegistryName::Npm(package.to_owned()));
        }
        name.strip_prefix("pypi:")
            .filter(|p| !p.is_empty())
            .map(|p| RegistryName::PyPi(p.to_owned()))
    }

    /// The executable a PyPI package provides: Airbyte's `airbyte-source-x` provides `source-x`.
    fn pypi_script(package: &str) -> String {
        let bare = package
            .split(['=', '<', '>', '~', '!', '['])
            .next()
            .unwrap_or(package);
        bare.strip_prefix("airbyte-").unwrap_or(bare).to_owned()
    }

    /// One command per launcher installed here, in order of preference.
    fn launchers(&self, role: Role, display: &str) -> Vec<Resolved> {
        let display = if display.contains(':') {
            display.to_owned()
        } else {
            format!("{}-{display}", role.as_str())
        };
        match self {
            RegistryName::Npm(package) => on_path("npx")
                .map(|npx| Resolved {
                    display: display.clone(),
                    program: npx.display().to_string(),
                    args: vec!["--yes".into(), package.clone()],
                    origin: Origin::Registry("npx", format!("npm:{package}")),
                })
                .into_iter()
                .collect(),
            RegistryName::PyPi(package) => {
                let script = RegistryName::pypi_script(package);
                let mut found = Vec::new();
                if let Some(uvx) = on_path("uvx") {
                    found.push(Resolved {
                        display: display.clone(),
                        program: uvx.display().to_string(),
                        args: vec!["--from".into(), package.clone(), script.clone()],
                        origin: Origin::Registry("uvx", format!("pypi:{package}")),
                    });
                }
                if let Some(pipx) = on_path("pipx") {
                    found.push(Resolved {
                        display: display.clone(),
                        program: pipx.display().to_string(),
                        args: vec!["run".into(), "--spec".into(), package.clone(), script],
                        origin: Origin::Registry("pipx", format!("pypi:{package}")),
                    });
                }
                found
            }
        }
    }

    fn no_launcher(&self) -> String {
        match self {
            RegistryName::Npm(p) => format!("npm package {p} (npx is not installed)"),
            RegistryName::PyPi(p) => {
                format!("PyPI package {p} (neither uvx nor pipx is installed)")
            }
        }
    }
}

/// Finds a connector's command by name: the command map, bundled binaries, PATH, registries.
pub struct Resolver {
    command_map: BTreeMap<String, String>,
    use_path: bool,
    /// Bare names are looked up on npm (`--connectors-from-registry`, `--connectors-from-npm`).
    use_npm: bool,
    /// ... and on PyPI (`--connectors-from-registry`).
    use_pypi: bool,
    bundled_dir: Option<PathBuf>,
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.is_file() && std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| is_executable(p))
    })
}

impl Resolver {
    /// A resolver as the flags set it up.
    pub fn new(args: &ResolverArgs) -> Result<Resolver> {
        let mut command_map = BTreeMap::new();
        if let Some(text) = &args.connectors_from_command_map {
            let Value::Object(map) =
                json_or_file("connectors-from-command-map", text).map_err(anyhow::Error::msg)?
            else {
                bail!(
                    "--connectors-from-command-map must be a JSON object of connector name to command line"
                );
            };
            for (key, value) in map {
                let Value::String(command) = value else {
                    bail!("--connectors-from-command-map: the command of {key:?} must be a string")
                };
                command_map.insert(key, command);
            }
        }
        let bundled_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf));
        Ok(Resolver {
            command_map,
            use_path: !args.no_connectors_from_path,
            use_npm: args.connectors_from_registry || args.connectors_from_npm,
            use_pypi: args.connectors_from_registry,
            bundled_dir,
        })
    }

    /// The commands that may run a connector, best first: one for the command map, a bundled
    /// binary or PATH; for a registry name, one per launcher that could fetch it (each must
    /// still answer `spec`). Fails listing every place tried.
    pub fn resolve(&self, role: Role, name: &str) -> Result<Vec<Resolved>> {
        if let Some(package) = RegistryName::parse(name) {
            let found = package.launchers(role, name);
            if found.is_empty() {
                bail!("{name}: {}", package.no_launcher());
            }
            return Ok(found);
        }
        let mut tried = Vec::new();
        if let Some(found) = self.in_command_map(role, name, &mut tried)? {
            return Ok(found);
        }
        if let Some(found) = self.among_executables(role, name, &mut tried) {
            return Ok(vec![found]);
        }
        if let Some(found) = self.in_registries(role, name, &mut tried) {
            return Ok(found);
        }
        bail!(
            "unknown {} connector {name:?}; tried: {}",
            role.as_str(),
            tried.join("; ")
        )
    }

    /// The command map's entry for the connector: a command line, or a registry name.
    fn in_command_map(
        &self,
        role: Role,
        name: &str,
        tried: &mut Vec<String>,
    ) -> Result<Option<Vec<Resolved>>> {
        let keys = match role {
            Role::Source => vec![format!("source-{name}")],
            Role::Destination => vec![format!("destination-{name}"), format!("dest-{name}")],
        };
        for key in &keys {
            let Some(command) = self.command_map.get(key) else {
                tried.push(format!("command map key {key:?}"));
                continue;
            };
            if let Some(package) = RegistryName::parse(command.trim()) {
                let found = package.launchers(role, key);
                if found.is_empty() {
                    bail!(
                        "--connectors-from-command-map {key:?}: {}",
                        package.no_launcher()
                    );
                }
                return Ok(Some(found));
            }
            let Some(mut words) = shlex::split(command).filter(|w| !w.is_empty()) else {
                bail!(
                    "--connectors-from-command-map: cannot parse the command of {key:?}: {command:?}"
                );
            };
            let program = words.remove(0);
            return Ok(Some(vec![Resolved {
                display: key.clone(),
                program,
                args: words,
                origin: Origin::CommandMap,
            }]));
        }
        Ok(None)
    }

    /// A binary next to the engine, then one on PATH (unless disabled).
    fn among_executables(
        &self,
        role: Role,
        name: &str,
        tried: &mut Vec<String>,
    ) -> Option<Resolved> {
        let names = executable_names(role, name);
        if let Some(dir) = &self.bundled_dir {
            for exe in &names {
                let path = dir.join(exe);
                if is_executable(&path) {
                    return Some(Resolved {
                        display: exe.clone(),
                        program: path.display().to_string(),
                        args: Vec::new(),
                        origin: Origin::Bundled,
                    });
                }
                tried.push(path.display().to_string());
            }
        }
        if !self.use_path {
            tried.push("PATH (disabled by --no-connectors-from-path)".into());
            return None;
        }
        for exe in &names {
            if let Some(path) = on_path(exe) {
                return Some(Resolved {
                    display: exe.clone(),
                    program: path.display().to_string(),
                    args: Vec::new(),
                    origin: Origin::Path,
                });
            }
            tried.push(format!("{exe} on PATH"));
        }
        None
    }

    /// For a bare name, when registries are enabled: the npm package, then the PyPI one.
    fn in_registries(
        &self,
        role: Role,
        name: &str,
        tried: &mut Vec<String>,
    ) -> Option<Vec<Resolved>> {
        if !self.use_npm && !self.use_pypi {
            tried.push("package registries (enable with --connectors-from-registry)".into());
            return None;
        }
        let mut found = Vec::new();
        let npm = RegistryName::Npm(format!("@stripe/sync-{}-{name}", role.as_str()));
        let pypi = RegistryName::PyPi(format!("airbyte-{}-{name}", role.as_str()));
        let enabled = [(self.use_npm, npm), (self.use_pypi, pypi)];
        for package in enabled.into_iter().filter(|(on, _)| *on).map(|(_, p)| p) {
            let launchers = package.launchers(role, name);
            if launchers.is_empty() {
                tried.push(package.no_launcher());
            }
            found.extend(launchers);
        }
        (!found.is_empty()).then_some(found)
    }

    /// Every connector name that resolves: known names, command-map keys and executables on PATH
    /// or next to the engine.
    pub fn candidates(&self) -> Vec<(Role, String)> {
        let mut found: BTreeMap<(u8, String), Role> = BTreeMap::new();
        let mut add = |file: &str| {
            for (prefix, role, rank) in [
                ("source-", Role::Source, 0u8),
                ("destination-", Role::Destination, 1),
                ("dest-", Role::Destination, 1),
            ] {
                if let Some(name) = file
                    .strip_prefix(prefix)
                    .filter(|n| !n.is_empty() && !n.contains('.'))
                {
                    found.insert((rank, name.to_owned()), role);
                }
            }
        };
        for key in self.command_map.keys() {
            add(key);
        }
        let mut dirs: Vec<PathBuf> = self.bundled_dir.iter().cloned().collect();
        if self.use_path
            && let Some(paths) = std::env::var_os("PATH")
        {
            dirs.extend(std::env::split_paths(&paths));
        }
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if is_executable(&entry.path()) {
                    add(&entry.file_name().to_string_lossy());
                }
            }
        }
        found
            .into_iter()
            .map(|((_, name), role)| (role, name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(map: &str, path: bool) -> Resolver {
        Resolver::new(&ResolverArgs {
            connectors_from_command_map: Some(map.into()),
            no_connectors_from_path: !path,
            connectors_from_registry: false,
            connectors_from_npm: false,
        })
        .unwrap()
    }

    #[test]
    fn the_command_map_wins_and_is_split_like_a_shell() {
        let r = resolver(
            r#"{"source-x": "python3 '/tmp/my connector.py' --flag", "destination-y": "y-bin"}"#,
            true,
        );
        let s = r.resolve(Role::Source, "x").unwrap().remove(0);
        assert_eq!(
            (s.program.as_str(), s.args.clone(), s.origin.clone()),
            (
                "python3",
                vec!["/tmp/my connector.py".to_owned(), "--flag".to_owned()],
                Origin::CommandMap
            )
        );
        assert_eq!(
            r.resolve(Role::Destination, "y").unwrap()[0].program,
            "y-bin"
        );
    }

    #[test]
    fn registry_names_name_their_package_and_script() {
        assert_eq!(
            RegistryName::parse("npm:@acme/source-x@1.2.0"),
            Some(RegistryName::Npm("@acme/source-x@1.2.0".into()))
        );
        assert_eq!(
            RegistryName::parse("pypi:airbyte-source-faker==7.2.1"),
            Some(RegistryName::PyPi("airbyte-source-faker==7.2.1".into()))
        );
        assert_eq!(RegistryName::parse("npm:"), None);
        assert_eq!(RegistryName::parse("faker"), None);
        assert_eq!(
            RegistryName::pypi_script("airbyte-source-faker==7.2.1"),
            "source-faker"
        );
        assert_eq!(RegistryName::pypi_script("my-tool>=2"), "my-tool");
    }

    #[test]
    fn an_unknown_connector_lists_every_place_tried() {
        let err = resolver("{}", false)
            .resolve(Role::Destination, "nowhere")
            .unwrap_err()
            .to_string();
        for part in [
            "destination-nowhere",
            "dest-nowhere",
            "PATH (disabled",
            "--connectors-from-registry",
        ] {
            assert!(err.contains(part), "{part} missing from: {err}");
        }
    }
}
