//! The protocol between the parent and the container's setup stage, over
//! the sync socket (fd 3 in the setup stage): every message of both
//! directions, with its encoding and decoding, is in this file.
//!
//! Parent → setup stage ([`ToSetup`]), one tag byte each:
//!
//! - `M`: the uid/gid maps of the new user namespace are written; read by the
//!   cloned child before it execs (see `sys::child_exec`), so the tag is the
//!   whole message;
//! - `C<len><json>`: the [`InitConfig`], `len` its JSON's length as a
//!   little-endian `u32`;
//! - `G`: "go", the child is in its cgroup.
//!
//! Setup stage → parent ([`FromSetup`]), one line each, fields separated by a
//! tab, with `\`, tab and newline escaped as `\\`, `\t` and `\n`:
//!
//! - `E<step>\t<message>`: the setup failed at `step` (the process exits);
//! - `T<step>\t<ns>`: a timing mark (CLOCK_MONOTONIC, see [`crate::timing`]);
//! - `I<note>`: a note for the report (how the root was entered).
//!
//! A successful exec closes the socket (close-on-exec), which the parent
//! reads as success.

use crate::error::{Error, Result};
use crate::init::InitConfig;
use std::io::{BufRead, Read, Write};

/// What the parent sends the setup stage.
#[derive(Debug)]
pub(crate) enum ToSetup {
    /// The user namespace's id maps are written: the child may exec.
    IdMapsWritten,
    /// The setup stage's configuration.
    Config(Box<InitConfig>),
    /// The child is in its cgroup: finish the setup and exec.
    Go,
}

const TAG_ID_MAPS: u8 = b'M';
const TAG_CONFIG: u8 = b'C';
const TAG_GO: u8 = b'G';

/// The length of [`ToSetup::IdMapsWritten`] on the wire, which the cloned
/// child reads without allocating.
pub(crate) const ID_MAPS_WRITTEN_LEN: usize = 1;

impl ToSetup {
    /// The message's bytes on the wire.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        Ok(match self {
            ToSetup::IdMapsWritten => vec![TAG_ID_MAPS],
            ToSetup::Go => vec![TAG_GO],
            ToSetup::Config(config) => {
                let json =
                    serde_json::to_vec(config).map_err(|source| Error::SetupConfig { source })?;
                let len = u32::try_from(json.len()).map_err(|_| Error::SetupProtocol {
                    received: format!("a config of {} bytes", json.len()),
                    why: "longer than 4 GiB",
                })?;
                let mut out = Vec::with_capacity(5 + json.len());
                out.push(TAG_CONFIG);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&json);
                out
            }
        })
    }

    /// Writes the message to `w`; `step` names what sending it does, for
    /// the error.
    pub(crate) fn send(&self, w: &mut impl Write, step: &'static str) -> Result<()> {
        let bytes = self.encode()?;
        w.write_all(&bytes).map_err(Error::io(step))
    }

    /// Reads one message from `r`.
    pub(crate) fn read(r: &mut impl Read) -> Result<ToSetup> {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag)
            .map_err(Error::io("reading from the parent"))?;
        match tag[0] {
            TAG_ID_MAPS => Ok(ToSetup::IdMapsWritten),
            TAG_GO => Ok(ToSetup::Go),
            TAG_CONFIG => {
                let mut len = [0u8; 4];
                r.read_exact(&mut len)
                    .map_err(Error::io("reading the config's length"))?;
                let mut json = vec![0u8; u32::from_le_bytes(len) as usize];
                r.read_exact(&mut json)
                    .map_err(Error::io("reading the config"))?;
                let config = serde_json::from_slice(&json)
                    .map_err(|source| Error::SetupConfig { source })?;
                Ok(ToSetup::Config(Box::new(config)))
            }
            other => Err(Error::SetupProtocol {
                received: format!("{:?}", char::from(other)),
                why: "not a message the parent sends (M, C or G)",
            }),
        }
    }

    /// The message's name, for an error about an unexpected one.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ToSetup::IdMapsWritten => "id-maps-written",
            ToSetup::Config(_) => "config",
            ToSetup::Go => "go",
        }
    }
}

/// What the setup stage sends the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FromSetup {
    /// The setup failed at `step`; the setup stage exits.
    Failed { step: String, message: String },
    /// The setup stage reached `step` at `ns` (CLOCK_MONOTONIC).
    Timing { step: String, ns: u64 },
    /// A note for the report.
    Note(String),
}

const TAG_FAILED: char = 'E';
const TAG_TIMING: char = 'T';
const TAG_NOTE: char = 'I';

/// The step of a [`FromSetup::Failed`] whose entry command was not found
/// (the parent's `Error::BadEntry`, exit code 127).
pub(crate) const STEP_EXEC_MISSING: &str = "exec-missing";

/// The step of a [`FromSetup::Failed`] whose entry command was found but
/// cannot be executed (the parent's `Error::BadEntry`, exit code 126).
pub(crate) const STEP_EXEC_PERMISSION: &str = "exec-permission";

/// [`FromSetup::Failed`] at `user-namespace`, as the cloned child writes it
/// without allocating when it cannot become root of its user namespace.
pub(crate) const USERNS_UNMAPPED: &[u8] =
    b"Euser-namespace\tuid/gid 0 is not mapped in the user namespace\n";

/// [`FromSetup::Failed`] at `setup`, as the cloned child writes it without
/// allocating when it cannot exec the setup stage.
pub(crate) const SETUP_EXEC_FAILED: &[u8] = b"Esetup\texec of the boxwatch setup stage failed\n";

impl FromSetup {
    /// A failure at `step`.
    pub(crate) fn failed(step: &str, message: impl Into<String>) -> FromSetup {
        FromSetup::Failed {
            step: step.to_string(),
            message: message.into(),
        }
    }

    /// The message as one line, newline included.
    pub(crate) fn encode(&self) -> String {
        let mut line = String::new();
        match self {
            FromSetup::Failed { step, message } => {
                line.push(TAG_FAILED);
                escape_into(&mut line, step);
                line.push('\t');
                escape_into(&mut line, message);
            }
            FromSetup::Timing { step, ns } => {
                line.push(TAG_TIMING);
                escape_into(&mut line, step);
                line.push('\t');
                line.push_str(&ns.to_string());
            }
            FromSetup::Note(note) => {
                line.push(TAG_NOTE);
                escape_into(&mut line, note);
            }
        }
        line.push('\n');
        line
    }

    /// Writes the message to `w`. The setup stage ignores a failed write:
    /// the parent reads a closed socket as the end.
    pub(crate) fn send(&self, w: &mut impl Write) {
        let _ = w.write_all(self.encode().as_bytes());
    }

    /// Decodes one line (without its newline).
    pub(crate) fn decode(line: &str) -> Result<FromSetup> {
        let malformed = |why| Error::SetupProtocol {
            received: line.to_string(),
            why,
        };
        let mut chars = line.chars();
        let tag = chars.next().ok_or_else(|| malformed("an empty line"))?;
        let body = chars.as_str();
        let two_fields = || {
            let (a, b) = body
                .split_once('\t')
                .ok_or_else(|| malformed("no tab between its two fields"))?;
            Ok::<_, Error>((unescape(a).ok_or_else(|| malformed("a bad escape"))?, b))
        };
        match tag {
            TAG_FAILED => {
                let (step, message) = two_fields()?;
                let message = unescape(message).ok_or_else(|| malformed("a bad escape"))?;
                Ok(FromSetup::Failed { step, message })
            }
            TAG_TIMING => {
                let (step, ns) = two_fields()?;
                let ns = ns
                    .parse()
                    .map_err(|_| malformed("a timing mark without a number of nanoseconds"))?;
                Ok(FromSetup::Timing { step, ns })
            }
            TAG_NOTE => Ok(FromSetup::Note(
                unescape(body).ok_or_else(|| malformed("a bad escape"))?,
            )),
            _ => Err(malformed("not a message the setup stage sends (E, T or I)")),
        }
    }

    /// Reads messages from `r` until it closes.
    pub(crate) fn read_all(r: impl BufRead) -> impl Iterator<Item = Result<FromSetup>> {
        r.lines().map(|line| {
            let line = line.map_err(Error::io("reading from the setup stage"))?;
            FromSetup::decode(&line)
        })
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ContainerSpec;
    use proptest::prelude::*;

    fn from_setup() -> impl Strategy<Value = FromSetup> {
        prop_oneof![
            (any::<String>(), any::<String>())
                .prop_map(|(step, message)| FromSetup::Failed { step, message }),
            (any::<String>(), any::<u64>()).prop_map(|(step, ns)| FromSetup::Timing { step, ns }),
            any::<String>().prop_map(FromSetup::Note),
        ]
    }

    proptest! {
        #[test]
        fn from_setup_round_trips(msgs in proptest::collection::vec(from_setup(), 0..8)) {
            let wire: String = msgs.iter().map(FromSetup::encode).collect();
            prop_assert_eq!(wire.matches('\n').count(), msgs.len());
            let back: Vec<FromSetup> = FromSetup::read_all(wire.as_bytes())
                .collect::<Result<_>>()
                .unwrap();
            prop_assert_eq!(back, msgs);
        }

        #[test]
        fn decoding_any_line_does_not_panic(line in "[^\n]*") {
            let _ = FromSetup::decode(&line);
        }
    }

    #[test]
    fn the_childs_literal_messages_decode() {
        let decode = |b: &[u8]| {
            let text = std::str::from_utf8(b).unwrap();
            FromSetup::decode(text.strip_suffix('\n').unwrap()).unwrap()
        };
        assert_eq!(
            decode(USERNS_UNMAPPED),
            FromSetup::failed(
                "user-namespace",
                "uid/gid 0 is not mapped in the user namespace"
            )
        );
        assert_eq!(
            decode(SETUP_EXEC_FAILED),
            FromSetup::failed("setup", "exec of the boxwatch setup stage failed")
        );
        assert_eq!(
            ToSetup::IdMapsWritten.encode().unwrap().len(),
            ID_MAPS_WRITTEN_LEN
        );
    }

    #[test]
    fn to_setup_round_trips() {
        let mut spec = ContainerSpec::new("c1", vec!["/bin/true".into(), "a\tb\nc".into()]);
        spec.env.push(("K".into(), "v\\w".into()));
        let config = InitConfig {
            spec,
            root_mount_point: "/run/boxwatch/r/c1/root".into(),
            exe: "/usr/bin/boxwatch".into(),
            term: Some("xterm".into()),
            timing: true,
        };
        let mut wire = ToSetup::IdMapsWritten.encode().unwrap();
        wire.extend(ToSetup::Config(Box::new(config)).encode().unwrap());
        wire.extend(ToSetup::Go.encode().unwrap());
        let mut r = wire.as_slice();
        assert!(matches!(
            ToSetup::read(&mut r).unwrap(),
            ToSetup::IdMapsWritten
        ));
        let ToSetup::Config(back) = ToSetup::read(&mut r).unwrap() else {
            panic!("not a config");
        };
        assert_eq!(back.spec.command, ["/bin/true", "a\tb\nc"]);
        assert_eq!(back.spec.env, [("K".to_string(), "v\\w".to_string())]);
        assert_eq!(
            back.root_mount_point.to_str(),
            Some("/run/boxwatch/r/c1/root")
        );
        assert_eq!(back.term.as_deref(), Some("xterm"));
        assert!(back.timing);
        assert!(matches!(ToSetup::read(&mut r).unwrap(), ToSetup::Go));
        assert!(r.is_empty());
    }

    /// A malformed message is an error that says what arrived and why it
    /// is not a message, never a silently skipped line.
    #[test]
    fn a_malformed_message_is_a_clear_error() {
        for (line, why) in [
            ("", "an empty line"),
            (
                "Xsomething",
                "not a message the setup stage sends (E, T or I)",
            ),
            ("Erootfs without a tab", "no tab between its two fields"),
            (
                "Tmounts\tsoon",
                "a timing mark without a number of nanoseconds",
            ),
            ("Inote \\q", "a bad escape"),
        ] {
            let e = FromSetup::decode(line).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("malformed message {line:?} on the setup stage's socket: {why}")
            );
        }
        let e = ToSetup::read(&mut &b"Z"[..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed message \"'Z'\" on the setup stage's socket: \
             not a message the parent sends (M, C or G)"
        );
        let mut bad_json = vec![TAG_CONFIG, 2, 0, 0, 0];
        bad_json.extend_from_slice(b"{]");
        let e = ToSetup::read(&mut bad_json.as_slice()).unwrap_err();
        assert!(matches!(e, Error::SetupConfig { .. }), "{e:?}");
        let truncated = [TAG_CONFIG, 9, 0, 0, 0, b'{'];
        let e = ToSetup::read(&mut &truncated[..]).unwrap_err();
        assert_eq!(e.to_string(), "reading the config failed");
    }
}
