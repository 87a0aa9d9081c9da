//! The destination a page reads (a pipeline's, or sync-engine's settings'), chosen by its
//! label in `?destination=`, and the choices offered.

use crate::frame::Console;
use crate::link;
use crate::table_stats::Destination;

/// One destination offered in a page's picker.
pub(crate) struct Choice {
    pub(crate) label: String,
    pub(crate) selected: bool,
}

/// The destination chosen, the choices, and the suffix that keeps the choice on links.
pub(crate) async fn chosen(
    console: &Console,
    wanted: Option<&str>,
) -> Result<(Option<Destination>, Vec<Choice>, String), String> {
    let all = console.explorer.destinations().await?;
    // One destination (sync-engine's settings) is chosen without asking.
    let pick = match wanted {
        Some(w) => all.iter().find(|d| d.label == w).cloned(),
        None if all.len() == 1 => all.first().cloned(),
        None => None,
    };
    let suffix = match (&pick, all.len()) {
        (Some(d), n) if n > 1 => format!("?destination={}", link::component(&d.label)),
        _ => String::new(),
    };
    let choices = all
        .iter()
        .map(|d| Choice {
            label: d.label.clone(),
            selected: pick.as_ref().is_some_and(|p| p.label == d.label),
        })
        .collect();
    Ok((pick, choices, suffix))
}
