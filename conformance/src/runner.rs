//! Plays one scenario against a server.
//!
//! Accounts: with `--create-accounts ibr` every account of the scenario gets a fresh localpart
//! (`romeo` becomes `romeo-k3x9a`) and is registered in-band before the first step and removed
//! after the last, so scenarios start from empty rosters and reruns never collide. With `none`
//! the accounts are used as written and must already exist.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use minidom::Element;

use crate::client::{self, ClientError, Incoming, ServerOpts, Session};
use crate::matcher::match_stanza;
use crate::pretty::{diff, pretty};
use crate::scenario::{Action, Scenario, Step};
use crate::template::{parse_block, Bindings, SCANSION_NS};

/// How the accounts a scenario needs come to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccountMode {
    /// Register fresh, uniquely named accounts by XEP-0077 and remove them afterwards.
    Ibr,
    /// Use the accounts exactly as written; they must exist.
    None,
}

/// Settings for every scenario of a run.
#[derive(Debug, Clone)]
pub struct RunOpts {
    pub server: ServerOpts,
    pub accounts: AccountMode,
    /// How long a `receives:` step waits for each stanza.
    pub step_timeout: Duration,
    /// How long `receives: nothing` listens.
    pub quiet_period: Duration,
    /// Domain the scenarios are written for.
    pub scenario_domain: String,
    pub keep_accounts: bool,
    /// Print every stanza sent and received to stderr.
    pub trace: bool,
}

/// Why a scenario failed: the step and a multi-line explanation.
#[derive(Debug, Clone)]
pub struct Failure {
    /// 1-based step number; 0 for account setup.
    pub step: usize,
    pub line: usize,
    pub header: String,
    pub detail: String,
}

impl Failure {
    fn setup(detail: String) -> Failure {
        Failure { step: 0, line: 0, header: "account setup".into(), detail }
    }

    /// One line for tables and result files.
    pub fn summary(&self) -> String {
        let first = self.detail.lines().next().unwrap_or_default();
        if self.step == 0 {
            format!("{}: {first}", self.header)
        } else {
            format!("step {} (line {}) `{}` {first}", self.step, self.line, self.header)
        }
    }
}

fn random_tag() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 6];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Fall back to the clock; uniqueness matters more than unpredictability here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes = [0; 6];
        for (i, b) in nanos.to_le_bytes().iter().enumerate() {
            bytes[i] = *b;
        }
        bytes[4] = std::process::id() as u8;
    }
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

fn localpart(jid: &str) -> &str {
    jid.split_once('@').map(|(l, _)| l).unwrap_or(jid)
}

fn resource_of(jid: &str) -> Option<&str> {
    jid.split_once('/').map(|(_, r)| r)
}

/// The state of one scenario run.
struct Run<'a> {
    scenario: &'a Scenario,
    opts: &'a RunOpts,
    bindings: Bindings,
    /// Run localpart -> passwords its clients use; the first registers the account, and
    /// removal tries each (a scenario may change the password in between).
    accounts: BTreeMap<String, Vec<String>>,
    sessions: HashMap<String, Session>,
    /// Stanzas looked at but not consumed (see `receive_unordered`), per client, oldest first.
    unread: HashMap<String, VecDeque<Element>>,
}

/// Plays `scenario`; `Ok` when every step passed.
pub async fn run_scenario(scenario: &Scenario, opts: &RunOpts) -> Result<(), Failure> {
    let mut run = Run::new(scenario, opts);
    run.create_accounts().await?;
    let result = run.play().await;
    run.teardown().await;
    result
}

impl<'a> Run<'a> {
    fn new(scenario: &'a Scenario, opts: &'a RunOpts) -> Self {
        let tag = random_tag();
        let mut bindings = Bindings {
            scenario_domain: opts.scenario_domain.clone(),
            domain: opts.server.domain.clone(),
            ..Default::default()
        };
        let mut accounts = BTreeMap::new();
        for client in &scenario.clients {
            let local = localpart(&client.jid).to_string();
            let run_local = match opts.accounts {
                AccountMode::Ibr => format!("{local}-{tag}"),
                AccountMode::None => local.clone(),
            };
            let passwords: &mut Vec<String> = accounts.entry(run_local.clone()).or_default();
            if !passwords.contains(&client.password) {
                passwords.push(client.password.clone());
            }
            bindings.vars.insert(format!("{}'s username", client.name), run_local.clone());
            bindings.localparts.insert(local, run_local);
        }
        for client in &scenario.clients {
            let bare = client.jid.split('/').next().unwrap_or(&client.jid);
            let bare = bindings.rewrite_jid(bare).unwrap_or_else(|| bare.to_string());
            bindings.vars.insert(format!("{}'s JID", client.name), bare);
        }
        Run { scenario, opts, bindings, accounts, sessions: HashMap::new(), unread: HashMap::new() }
    }

    async fn create_accounts(&self) -> Result<(), Failure> {
        if self.opts.accounts != AccountMode::Ibr {
            return Ok(());
        }
        for (user, passwords) in &self.accounts {
            let password = passwords.first().map(String::as_str).unwrap_or_default();
            client::register(&self.opts.server, user, password)
                .await
                .map_err(|e| Failure::setup(format!("registering {user}: {e}")))?;
        }
        Ok(())
    }

    async fn teardown(&mut self) {
        let wait = Duration::from_millis(500);
        for (_, session) in self.sessions.drain() {
            session.close(wait).await;
        }
        if self.opts.accounts != AccountMode::Ibr || self.opts.keep_accounts {
            return;
        }
        let mut removals = Vec::new();
        for (user, passwords) in &self.accounts {
            let (server, user, passwords) = (self.opts.server.clone(), user.clone(), passwords.clone());
            removals.push(tokio::spawn(async move {
                for password in &passwords {
                    if client::unregister(&server, &user, password).await.is_ok() {
                        break;
                    }
                }
            }));
        }
        for removal in removals {
            // A server that cannot remove accounts leaves them behind; that is not a failure
            // of the scenario.
            let _ = removal.await;
        }
    }

    async fn play(&mut self) -> Result<(), Failure> {
        for (index, step) in self.scenario.steps.iter().enumerate() {
            self.step(step).await.map_err(|detail| Failure {
                step: index + 1,
                line: step.line,
                header: step.header(),
                detail,
            })?;
        }
        Ok(())
    }

    fn trace(&self, name: &str, verb: &str, el: &Element) {
        if self.opts.trace {
            eprintln!("[{}] {name} {verb}:\n{}", self.scenario.title, indent(&pretty(el)));
        }
    }

    /// Next stanza for `name`, traced.
    async fn next_incoming(&mut self, name: &str, wait: Duration) -> Result<Option<Incoming>, String> {
        if let Some(el) = self.unread.get_mut(name).and_then(VecDeque::pop_front) {
            return Ok(Some(Incoming::Stanza(el)));
        }
        let item = self.session(name)?.recv(wait).await;
        if let Some(Incoming::Stanza(el)) = &item {
            self.trace(name, "receives", el);
        }
        Ok(item)
    }

    fn session(&mut self, name: &str) -> Result<&mut Session, String> {
        self.sessions.get_mut(name).ok_or_else(|| format!("{name} is not connected (add `{name} connects` before)"))
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        let name = step.client.as_str();
        match &step.action {
            Action::Connect => self.connect(name).await,
            Action::Disconnect => {
                let session = self.sessions.remove(name).ok_or_else(|| format!("{name} is not connected"))?;
                self.unread.remove(name);
                session.close(self.opts.step_timeout).await;
                Ok(())
            }
            Action::Send(xml) => {
                let stanzas = parse_block(xml).map_err(|e| e.to_string())?;
                for mut stanza in stanzas {
                    self.bindings.apply(&mut stanza).map_err(|e| e.to_string())?;
                    self.trace(name, "sends", &stanza);
                    self.session(name)?.send(&stanza).await.map_err(|e| format!("sending failed: {e}"))?;
                }
                Ok(())
            }
            Action::Receive(xml) => self.receive(name, xml).await,
            Action::ReceiveUnordered(xml) => self.receive_unordered(name, xml).await,
            Action::ReceiveNothing => {
                let quiet = self.opts.quiet_period;
                match self.next_incoming(name, quiet).await? {
                    None => Ok(()),
                    Some(Incoming::Stanza(el)) => {
                        Err(format!("expected nothing within {}, received:\n{}", seconds(quiet), indent(&pretty(&el))))
                    }
                    Some(Incoming::Closed(why)) => Err(format!("expected nothing, but the stream ended: {why}")),
                }
            }
        }
    }

    async fn connect(&mut self, name: &str) -> Result<(), String> {
        if self.sessions.contains_key(name) {
            return Err(format!("{name} is already connected"));
        }
        let def = self.scenario.client(name).ok_or_else(|| format!("unknown client {name}"))?;
        let local = localpart(&def.jid);
        let user = self.bindings.localparts.get(local).cloned().unwrap_or_else(|| local.to_string());
        let resource = def.resource.as_deref().or(resource_of(&def.jid));
        let session = Session::connect(&self.opts.server, &user, &def.password, resource)
            .await
            .map_err(|e: ClientError| format!("{name} could not connect as {user}: {e}"))?;
        self.trace(name, "is bound with stream features", &session.features);
        self.bindings.vars.insert(format!("{name}'s full JID"), session.jid.clone());
        self.sessions.insert(name.to_string(), session);
        Ok(())
    }

    async fn receive(&mut self, name: &str, xml: &str) -> Result<(), String> {
        let expected = parse_block(xml).map_err(|e| e.to_string())?;
        if expected.iter().any(is_optional) {
            return Err("scansion:optional is only allowed in `receives in any order:` blocks".into());
        }
        let total = expected.len();
        for (i, mut want) in expected.into_iter().enumerate() {
            // Applied one by one so a capture made by stanza 1 can be used by stanza 2.
            self.bindings.apply(&mut want).map_err(|e| e.to_string())?;
            let which = if total > 1 { format!("stanza {} of {total}", i + 1) } else { "the stanza".to_string() };
            let timeout = self.opts.step_timeout;
            let got = match self.next_incoming(name, timeout).await? {
                Some(Incoming::Stanza(el)) => el,
                None => {
                    return Err(format!(
                        "timed out after {} waiting for {which}; expected:\n{}",
                        seconds(timeout),
                        indent(&pretty(&want))
                    ))
                }
                Some(Incoming::Closed(why)) => {
                    return Err(format!(
                        "stream ended while waiting for {which}: {why}; expected:\n{}",
                        indent(&pretty(&want))
                    ))
                }
            };
            if let Err(m) = match_stanza(&want, &got, &mut self.bindings.vars) {
                return Err(mismatch_report(&which, &m.path, &m.reason, &want, &got));
            }
        }
        Ok(())
    }
}

impl Run<'_> {
    /// Waits until every required stanza of the block has arrived, in any order. Each arriving
    /// stanza must match a distinct expected one. Stanzas marked `scansion:optional='true'`
    /// (behaviour the RFCs leave open) are matched if they arrive before the required ones are
    /// complete or within the quiet period after; anything else arriving then is left unread
    /// for the next step.
    async fn receive_unordered(&mut self, name: &str, xml: &str) -> Result<(), String> {
        let mut remaining = parse_block(xml).map_err(|e| e.to_string())?;
        for want in &mut remaining {
            self.bindings.apply(want).map_err(|e| e.to_string())?;
        }
        let total = remaining.iter().filter(|w| !is_optional(w)).count();
        while remaining.iter().any(|w| !is_optional(w)) {
            let timeout = self.opts.step_timeout;
            let got = match self.next_incoming(name, timeout).await? {
                Some(Incoming::Stanza(el)) => el,
                None => {
                    let missing: Vec<String> =
                        remaining.iter().filter(|w| !is_optional(w)).map(|w| indent(&pretty(w))).collect();
                    return Err(format!(
                        "timed out after {} with {} of {total} stanzas still expected:\n{}",
                        seconds(timeout),
                        missing.len(),
                        missing.join("\n")
                    ));
                }
                Some(Incoming::Closed(why)) => return Err(format!("stream ended while waiting for stanzas: {why}")),
            };
            match pick_expected(&remaining, &got, &mut self.bindings.vars) {
                Some(i) => {
                    remaining.remove(i);
                }
                None => {
                    let closest = remaining.iter().find(|w| w.name() == got.name()).unwrap_or(&remaining[0]);
                    let mut scratch = self.bindings.vars.clone();
                    let why = match_stanza(closest, &got, &mut scratch)
                        .err()
                        .map(|m| format!("{}: {}", m.path, m.reason))
                        .unwrap_or_default();
                    return Err(mismatch_report(
                        "a received stanza matches none of the expected ones; closest",
                        "",
                        &why,
                        closest,
                        &got,
                    ));
                }
            }
        }
        if remaining.is_empty() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.opts.quiet_period;
        while !remaining.is_empty() {
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(Incoming::Stanza(got)) = self.next_incoming(name, wait).await? else {
                break;
            };
            match remaining.iter().position(|w| match_stanza(w, &got, &mut self.bindings.vars).is_ok()) {
                Some(i) => {
                    remaining.remove(i);
                }
                None => {
                    self.unread.entry(name.to_string()).or_default().push_front(got);
                    break;
                }
            }
        }
        Ok(())
    }
}

fn is_optional(el: &Element) -> bool {
    el.attr_ns(SCANSION_NS, "optional") == Some("true")
}

/// Index of the expected stanza that `got` satisfies. Required stanzas are tried first, so an
/// optional one never takes a stanza a required one needs.
fn pick_expected(expected: &[Element], got: &Element, vars: &mut HashMap<String, String>) -> Option<usize> {
    let mut order: Vec<usize> = (0..expected.len()).collect();
    order.sort_by_key(|&i| is_optional(&expected[i]));
    order.into_iter().find(|&i| match_stanza(&expected[i], got, vars).is_ok())
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect::<String>().trim_end().to_string()
}

fn mismatch_report(which: &str, path: &str, reason: &str, want: &Element, got: &Element) -> String {
    let (w, g) = (pretty(want), pretty(got));
    let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
    format!(
        "{which} did not match{at}: {reason}\n  expected:\n{}\n  received:\n{}\n  \
         diff (- expected, + received):\n{}",
        indent(&w),
        indent(&g),
        indent(&diff(&w, &g))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(xml: &str) -> Vec<Element> {
        parse_block(xml).unwrap()
    }

    #[test]
    fn required_stanzas_are_matched_before_optional_ones() {
        let expected = block("<presence scansion:optional='true'/><presence type='unavailable'/><message/>");
        let mut vars = HashMap::new();
        let unavailable = block("<presence type='unavailable' from='a@b/c'/>").remove(0);
        assert_eq!(pick_expected(&expected, &unavailable, &mut vars), Some(1));
        let available = block("<presence from='a@b/c'/>").remove(0);
        assert_eq!(pick_expected(&expected, &available, &mut vars), Some(0));
        let iq = block("<iq type='get'/>").remove(0);
        assert_eq!(pick_expected(&expected, &iq, &mut vars), None);
        assert!(is_optional(&expected[0]) && !is_optional(&expected[1]));
    }

    #[test]
    fn failure_summary_names_step_and_first_line() {
        let f = Failure {
            step: 3,
            line: 20,
            header: "Romeo receives:".into(),
            detail: "the stanza did not match\nmore".into(),
        };
        assert_eq!(f.summary(), "step 3 (line 20) `Romeo receives:` the stanza did not match");
        assert_eq!(
            Failure::setup("registering x: conflict".into()).summary(),
            "account setup: registering x: conflict"
        );
    }
}
