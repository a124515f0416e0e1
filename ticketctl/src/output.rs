//! Printing: proto3 JSON (through prost-reflect and ticketd's descriptors), YAML of the same value, tables,
//! `kind/id` names, and the rule for colour.

use std::{
    io::IsTerminal,
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

use comfy_table::{ContentArrangement, Table, presets};
use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::{cli::Format, error::CliError};

/// Writes to stdout; a closed pipe (`ticketctl get tickets | head`) ends the process quietly instead of the
/// panic `print!` would raise, as Rust ignores SIGPIPE.
pub fn write_stdout(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {error}");
        std::process::exit(i32::from(crate::error::EXIT_LOCAL));
    }
}

/// `println!` that survives a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use outln;

/// Whether stdout gets colour: only on a terminal, and never when `NO_COLOR` is set to something.
pub fn stdout_colour() -> bool {
    colour_allowed(
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stdout().is_terminal(),
    )
}

/// The rule of <https://no-color.org>: an empty `NO_COLOR` does not count.
fn colour_allowed(no_colour: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_colour.is_none_or(|value| value.is_empty())
}

/// ANSI colours used by `watch` and `describe`.
#[derive(Debug, Clone, Copy)]
pub enum Colour {
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
    Bold,
}

/// `text` in `colour` when `enabled`.
pub fn paint(text: &str, colour: Colour, enabled: bool) -> String {
    if !enabled {
        return text.to_owned();
    }
    let code = match colour {
        Colour::Red => "31",
        Colour::Green => "32",
        Colour::Yellow => "33",
        Colour::Blue => "34",
        Colour::Magenta => "35",
        Colour::Cyan => "36",
        Colour::Bold => "1",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// ticketd's descriptors, decoded once.
fn pool() -> Result<&'static DescriptorPool, CliError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(ticketd::proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|error| CliError::local(format!("ticketd's descriptors do not decode: {error}")))
}

/// The descriptor of message `M`.
pub fn descriptor<M: Name>() -> Result<prost_reflect::MessageDescriptor, CliError> {
    let name = M::full_name();
    pool()?
        .get_message_by_name(&name)
        .ok_or_else(|| CliError::local(format!("no descriptor for {name}")))
}

/// `message` as a reflective message, whose `Serialize` is the proto3 JSON mapping. Serialized as it is (not
/// through `serde_json::Value`, whose maps are sorted), JSON and YAML keep the fields in proto order.
pub fn to_dynamic<M: Message + Name>(message: &M) -> Result<DynamicMessage, CliError> {
    DynamicMessage::decode(descriptor::<M>()?, message.encode_to_vec().as_slice())
        .map_err(|error| CliError::local(format!("cannot re-read {}: {error}", M::full_name())))
}

/// `message` in the proto3 JSON mapping, on one line.
pub fn to_json_line<M: Message + Name>(message: &M) -> Result<String, CliError> {
    serde_json::to_string(&to_dynamic(message)?).map_err(|error| {
        CliError::local(format!("cannot write {} as JSON: {error}", M::full_name()))
    })
}

/// A message of type `M` read from its proto3 JSON mapping (any serde value, so YAML works too).
pub fn from_json<M: Message + Name + Default>(value: serde_json::Value) -> Result<M, String> {
    let descriptor = descriptor::<M>().map_err(|error| error.render())?;
    let dynamic =
        DynamicMessage::deserialize(descriptor, value).map_err(|error| error.to_string())?;
    dynamic
        .transcode_to::<M>()
        .map_err(|error| error.to_string())
}

/// Prints `value` as JSON (pretty) or YAML.
pub fn print_document(value: &impl serde::Serialize, format: Format) -> Result<(), CliError> {
    let text = match format {
        Format::Yaml => serde_norway::to_string(value)
            .map_err(|error| CliError::local(format!("cannot write YAML: {error}")))?,
        _ => {
            serde_json::to_string_pretty(value)
                .map_err(|error| CliError::local(format!("cannot write JSON: {error}")))?
                + "\n"
        }
    };
    write_stdout(&text);
    Ok(())
}

/// Prints messages in any `-o` format: documents for json/yaml (a list as an array), `name` lines, or a table
/// of `columns(wide)` with one row per message from `row(message, wide)`.
pub struct Listing<'a, M> {
    pub items: &'a [M],
    /// The resource's kind in `-o name` lines (`ticket`).
    pub kind: &'a str,
    /// Its plural, for "No tickets found."
    pub plural: &'a str,
    pub name: &'a dyn Fn(&M) -> String,
    pub columns: &'a dyn Fn(bool) -> Vec<&'static str>,
    pub row: &'a dyn Fn(&M, bool) -> Vec<String>,
}

impl<M: Message + Name> Listing<'_, M> {
    /// Prints a list (`single == false`) or one item.
    pub fn print(&self, format: Format, single: bool) -> Result<(), CliError> {
        match format {
            Format::Json | Format::Yaml => {
                let values = self
                    .items
                    .iter()
                    .map(to_dynamic)
                    .collect::<Result<Vec<_>, _>>()?;
                match (single, values.as_slice()) {
                    (true, [one]) => print_document(one, format),
                    _ => print_document(&values, format),
                }
            }
            Format::Name => {
                for item in self.items {
                    outln!("{}/{}", self.kind, (self.name)(item));
                }
                Ok(())
            }
            Format::Table | Format::Wide => {
                let wide = format == Format::Wide;
                if self.items.is_empty() && !single {
                    eprintln!("No {} found.", self.plural);
                    return Ok(());
                }
                let rows: Vec<Vec<String>> = self
                    .items
                    .iter()
                    .map(|item| (self.row)(item, wide))
                    .collect();
                print_table(&(self.columns)(wide), rows);
                Ok(())
            }
        }
    }
}

/// A kubectl-style table: a header of capitals, columns separated by three spaces, no borders.
pub fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for index in 0..header.len() {
        if let Some(column) = table.column_mut(index) {
            column.set_padding((0, 3));
        }
    }
    for line in table.lines() {
        outln!("{}", line.trim_end());
    }
}

/// `5s`, `3m`, `2h`, `4d`: how long ago `time` was.
pub fn age(time: Option<&prost_types::Timestamp>) -> String {
    let Some(time) = time else {
        return String::new();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    let seconds = (now - time.seconds).max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

/// RFC 3339, or empty when unset.
pub fn timestamp(time: Option<&prost_types::Timestamp>) -> String {
    time.map(ToString::to_string).unwrap_or_default()
}

/// At most `max` characters, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        let mut cut: String = head.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use ticketd::proto::Ticket;

    use super::*;

    #[test]
    fn json_is_the_proto3_mapping() {
        let ticket = Ticket {
            id: 7,
            subject: "printer".into(),
            priority: ticketd::proto::Priority::High as i32,
            ..Ticket::default()
        };
        let value: serde_json::Value =
            serde_json::from_str(&to_json_line(&ticket).unwrap()).unwrap();
        assert_eq!(value["id"], "7");
        assert_eq!(value["subject"], "printer");
        assert_eq!(value["priority"], "PRIORITY_HIGH");
        let back: Ticket = from_json(value).unwrap();
        assert_eq!(back, ticket);
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_allowed(None, true));
        assert!(colour_allowed(Some(OsStr::new("")), true));
        assert!(!colour_allowed(Some(OsStr::new("1")), true));
        assert!(!colour_allowed(None, false));
        assert_eq!(paint("CREATED", Colour::Green, false), "CREATED");
        assert_eq!(
            paint("CREATED", Colour::Green, true),
            "\x1b[32mCREATED\x1b[0m"
        );
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
    }
}
