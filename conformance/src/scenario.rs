//! Parser for Prosody's scansion `.scs` scenario format (the subset this suite uses).
//!
//! ```text
//! # Title of the scenario
//! # more comment lines (cite the RFC section here)
//!
//! [Client] Romeo
//!     jid: romeo@localhost
//!     password: password
//!     resource: balcony          (optional)
//!
//! -----
//!
//! Romeo connects
//! Romeo sends:
//!     <presence/>
//! Romeo receives:
//!     <presence from="${Romeo's full JID}"/>
//! Romeo receives: nothing
//! Romeo receives in any order:          (extension: the stanzas below, in any order)
//!     <iq type='result' id='r1'/>
//!     <iq type='set'/>
//! Romeo disconnects
//! ```
//!
//! (Indentation is a tab or spaces.) Comment lines start with `#` in the first column; indented
//! lines belong to the step above.
//! XML is kept as text here and turned into elements at run time (see `template`), because
//! placeholders such as `${Romeo's full JID}` are only known once the client is bound. The XML is
//! still checked for well-formedness at load time so typos fail before any server is contacted.

use std::fmt;

use crate::template;

/// A client declared by a `[Client] Name` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDef {
    pub name: String,
    /// JID as written (its domain is rewritten to the target server's at run time).
    pub jid: String,
    pub password: String,
    /// Resource to request at bind time; `None` lets the server choose one.
    pub resource: Option<String>,
    pub line: usize,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Connect,
    Disconnect,
    /// XML text of one or more stanzas to send.
    Send(String),
    /// XML text of one or more stanzas that must arrive, in this order.
    Receive(String),
    /// Extension to scansion: stanzas that must all arrive, in any order, for exchanges where the
    /// RFC fixes no order (e.g. a roster set's result and its roster push).
    ReceiveUnordered(String),
    /// No stanza may arrive during the quiet period.
    ReceiveNothing,
}

/// One step of the script.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based line of the step header in the file.
    pub line: usize,
    pub client: String,
    pub action: Action,
}

impl Step {
    /// The step header as written in the file, used in reports.
    pub fn header(&self) -> String {
        let verb = match self.action {
            Action::Connect => "connects",
            Action::Disconnect => "disconnects",
            Action::Send(_) => "sends:",
            Action::Receive(_) => "receives:",
            Action::ReceiveUnordered(_) => "receives in any order:",
            Action::ReceiveNothing => "receives: nothing",
        };
        format!("{} {}", self.client, verb)
    }
}

/// A parsed scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub title: String,
    pub clients: Vec<ClientDef>,
    pub steps: Vec<Step>,
}

/// A syntax error in a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError { line, message: message.into() }
}

fn is_indented(line: &str) -> bool {
    line.starts_with([' ', '\t'])
}

/// Collects the indented block following line index `start` (exclusive); returns the text and
/// the index of the first line after the block. Blank lines inside a block are kept.
fn take_block(lines: &[&str], start: usize) -> (String, usize) {
    let mut end = start;
    let mut last_content = start;
    while end < lines.len() {
        let l = lines[end];
        if l.trim().is_empty() {
            end += 1;
            continue;
        }
        if !is_indented(l) {
            break;
        }
        end += 1;
        last_content = end;
    }
    let text = lines[start..last_content].join("\n");
    (text, last_content)
}

impl Scenario {
    /// Parses the text of a `.scs` file.
    pub fn parse(text: &str) -> Result<Scenario, ParseError> {
        let lines: Vec<&str> = text.lines().collect();
        let mut title = None;
        let mut clients: Vec<ClientDef> = Vec::new();
        let mut steps = Vec::new();
        let mut in_steps = false;
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            let lineno = i + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() {
                i += 1;
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                if title.is_none() {
                    title = Some(comment.trim().to_string());
                }
                i += 1;
                continue;
            }
            if is_indented(line) {
                return Err(err(lineno, "indented line outside a client block or step"));
            }
            if trimmed.len() >= 3 && trimmed.chars().all(|c| c == '-') {
                if in_steps {
                    return Err(err(lineno, "second ----- separator"));
                }
                in_steps = true;
                i += 1;
                continue;
            }
            if let Some(name) = trimmed.strip_prefix("[Client]") {
                if in_steps {
                    return Err(err(lineno, "[Client] block after the ----- separator"));
                }
                let (def, next) = parse_client(&lines, i, name.trim())?;
                if clients.iter().any(|c| c.name == def.name) {
                    return Err(err(lineno, format!("client {:?} declared twice", def.name)));
                }
                clients.push(def);
                i = next;
                continue;
            }
            if trimmed.starts_with('[') {
                return Err(err(lineno, format!("unsupported object {trimmed:?}")));
            }
            if !in_steps {
                return Err(err(lineno, "steps must follow a ----- separator line"));
            }
            let (step, next) = parse_step(&lines, i, &clients)?;
            steps.push(step);
            i = next;
        }
        if clients.is_empty() {
            return Err(err(1, "no [Client] declared"));
        }
        Ok(Scenario { title: title.unwrap_or_default(), clients, steps })
    }

    pub fn client(&self, name: &str) -> Option<&ClientDef> {
        self.clients.iter().find(|c| c.name == name)
    }
}

fn parse_client(lines: &[&str], at: usize, name: &str) -> Result<(ClientDef, usize), ParseError> {
    let lineno = at + 1;
    if name.is_empty() {
        return Err(err(lineno, "[Client] needs a name"));
    }
    let (block, next) = take_block(lines, at + 1);
    let (mut jid, mut password, mut resource) = (None, None, None);
    for (offset, l) in block.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((key, value)) = l.split_once(':') else {
            return Err(err(lineno + 1 + offset, format!("expected `key: value`, got {l:?}")));
        };
        let value = value.trim().to_string();
        match key.trim() {
            "jid" => jid = Some(value),
            "password" => password = Some(value),
            "resource" => resource = Some(value),
            // scansion lets a client point elsewhere; this runner connects all clients to --host.
            "connect_host" | "connect_port" => {}
            other => return Err(err(lineno + 1 + offset, format!("unknown client property {other:?}"))),
        }
    }
    let jid = jid.ok_or_else(|| err(lineno, format!("client {name:?} has no jid")))?;
    if !jid.contains('@') {
        return Err(err(lineno, format!("client {name:?}: jid {jid:?} has no localpart")));
    }
    let password = password.ok_or_else(|| err(lineno, format!("client {name:?} has no password")))?;
    Ok((ClientDef { name: name.to_string(), jid, password, resource, line: lineno }, next))
}

fn parse_step(lines: &[&str], at: usize, clients: &[ClientDef]) -> Result<(Step, usize), ParseError> {
    let lineno = at + 1;
    let trimmed = lines[at].trim();
    const VERBS: [&str; 6] =
        [" receives: nothing", " receives in any order:", " receives:", " sends:", " disconnects", " connects"];
    let (client, verb) = VERBS
        .iter()
        .find_map(|v| trimmed.strip_suffix(v).map(|name| (name.trim(), *v)))
        .ok_or_else(|| err(lineno, format!("unrecognised step {trimmed:?}")))?;
    if !clients.iter().any(|c| c.name == client) {
        return Err(err(lineno, format!("unknown client {client:?}")));
    }
    let (action, next) = match verb {
        " connects" => (Action::Connect, at + 1),
        " disconnects" => (Action::Disconnect, at + 1),
        " receives: nothing" => (Action::ReceiveNothing, at + 1),
        _ => {
            let (block, next) = take_block(lines, at + 1);
            if block.trim().is_empty() {
                return Err(err(lineno, "step has no XML below it"));
            }
            template::check_well_formed(&block).map_err(|e| err(lineno + 1, format!("bad XML: {e}")))?;
            match verb {
                " sends:" => (Action::Send(block), next),
                " receives:" => (Action::Receive(block), next),
                _ => (Action::ReceiveUnordered(block), next),
            }
        }
    };
    Ok((Step { line: lineno, client: client.to_string(), action }, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "# Roster get\n# RFC 6121 2.2\n\n[Client] Romeo\n\tjid: romeo@localhost\n\tpassword: pw\n\n[Client] Juliet's phone\n\tjid: juliet@localhost\n\tpassword: pw2\n\tresource: phone\n\n-----\n\nRomeo connects\n\n# a comment between steps\nRomeo sends:\n\t<iq type='get' id='r1'>\n\n\t\t<query xmlns='jabber:iq:roster'/>\n\t</iq>\n\nRomeo receives:\n\t<iq type='result' id='r1'/>\n\t<presence/>\nJuliet's phone receives: nothing\nRomeo receives in any order:\n\t<a/>\n\t<b/>\nRomeo disconnects\n";

    #[test]
    fn parses_clients_and_steps() {
        let s = Scenario::parse(EXAMPLE).unwrap();
        assert_eq!(s.title, "Roster get");
        assert_eq!(s.clients.len(), 2);
        assert_eq!(s.clients[1].name, "Juliet's phone");
        assert_eq!(s.clients[1].resource.as_deref(), Some("phone"));
        let kinds: Vec<_> = s.steps.iter().map(|st| st.header()).collect();
        assert_eq!(
            kinds,
            [
                "Romeo connects",
                "Romeo sends:",
                "Romeo receives:",
                "Juliet's phone receives: nothing",
                "Romeo receives in any order:",
                "Romeo disconnects"
            ]
        );
        assert_eq!(s.steps[1].line, 18);
        match &s.steps[1].action {
            Action::Send(xml) => assert!(xml.contains("jabber:iq:roster") && xml.contains("</iq>")),
            other => panic!("{other:?}"),
        }
        match &s.steps[2].action {
            Action::Receive(xml) => assert!(xml.contains("<presence/>")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_errors_with_line_numbers() {
        let bad_client = "# t\n[Client] A\n\tjid: a@localhost\n\tpassword: p\n-----\nB connects\n";
        assert_eq!(Scenario::parse(bad_client).unwrap_err().line, 6);
        let bad_xml = "# t\n[Client] A\n\tjid: a@localhost\n\tpassword: p\n-----\nA sends:\n\t<iq>\n";
        let e = Scenario::parse(bad_xml).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        let no_sep = "# t\n[Client] A\n\tjid: a@localhost\n\tpassword: p\nA connects\n";
        assert_eq!(Scenario::parse(no_sep).unwrap_err().line, 5);
        let bad_step = "# t\n[Client] A\n\tjid: a@l\n\tpassword: p\n---\nA jumps\n";
        assert!(Scenario::parse(bad_step).unwrap_err().message.contains("unrecognised"));
        let missing_pw = "# t\n[Client] A\n\tjid: a@l\n---\n";
        assert!(Scenario::parse(missing_pw).unwrap_err().message.contains("password"));
    }
}
