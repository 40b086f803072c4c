//! Where a [`Config`] comes from: a file, config text, or a board profile.

use std::path::Path;

use super::Config;
use super::board;
use super::raw::RawConfig;
use super::text::{ConfigText, read_text};
use super::validate;
use crate::error::ConfigError;

impl Config {
    /// Reads and validates a config file. Relative paths in it are relative
    /// to the file's directory. `board` (from `--board`) overrides the file's
    /// `board` key.
    pub fn load(path: &Path, board: Option<&str>) -> Result<Self, ConfigError> {
        let text = read_text(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base, board)
    }

    /// Parses and validates config text; `file` names it in errors and
    /// `base` is the directory relative paths (and `boards/`) are under.
    pub fn parse(
        text: &str,
        file: &str,
        base: &Path,
        board: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let input = ConfigText { text, file };
        let raw: RawConfig = input.parse()?;
        let defaults = match board.or(raw.board.as_ref().map(|b| b.get_ref().as_str())) {
            Some(name) => Self::for_board(name, base)?,
            None => Config::default(),
        };
        validate::validate(&input, raw, base, defaults)
    }

    /// The defaults of board profile `name` (see `config::board`), looked
    /// up in `dir/boards/` first, then among the built-in profiles.
    pub fn for_board(name: &str, dir: &Path) -> Result<Self, ConfigError> {
        let (file, text) = board::find(name, dir)?;
        let input = ConfigText {
            text: &text,
            file: &file,
        };
        board::validate_board(&input, input.parse()?, name)
    }
}
