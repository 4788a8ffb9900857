//! The query (XEP-0313 §4), sans IO: a `<query/>` read into filters and a page request
//! (XEP-0059 RSM), each bad input refused with its precise condition and text; a page of
//! archive entries written back as `<result/>` messages and the `<fin/>`.

use tessera_plugin_api::datetime::{format_utc_millis, parse_utc};
use tessera_plugin_api::protocol::{ArchiveItem, ArchiveQuery};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::StanzaCondition;

use crate::{CLIENT_NS, NS};

/// XEP-0004 data forms.
pub const FORM_NS: &str = "jabber:x:data";
/// XEP-0059 Result Set Management.
pub const RSM_NS: &str = "http://jabber.org/protocol/rsm";
const FORWARD_NS: &str = "urn:xmpp:forward:0";
const DELAY_NS: &str = "urn:xmpp:delay";

/// Results per page when the client does not say (`<max/>` absent).
pub const DEFAULT_MAX: u32 = 50;
/// The most results one page may ask for.
pub const MAX_MAX: u32 = 250;
/// The most ids one `ids` field may list.
pub const MAX_IDS: usize = 250;

/// Why a query is refused: the condition and the text the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stanza error condition.
    pub condition: StanzaCondition,
    /// What was wrong.
    pub text: String,
}

/// A `bad-request` refusal.
pub(crate) fn bad(text: impl Into<String>) -> Refusal {
    Refusal {
        condition: StanzaCondition::BadRequest,
        text: text.into(),
    }
}

/// Where a page starts (XEP-0059 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// From the oldest matching entry (no `<before/>` nor `<after/>`).
    First,
    /// The entries after this id.
    After(String),
    /// The last page (`<before/>` empty).
    Last,
    /// The entries just before this id.
    Before(String),
}

/// A query as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The client's `queryid`, echoed in every `<result/>`.
    pub queryid: Option<String>,
    /// The form's filters (`with`, `start`, `end`, `after-id`, `before-id`, `ids`); paging
    /// fields are added by [`Query::archive_query`].
    pub filter: ArchiveQuery,
    /// Entries per page; 0 asks for the count alone (XEP-0059 §2.7).
    pub max: u32,
    /// Where the page starts.
    pub page: Page,
    /// XEP-0313 §4.1.2 `<flip-page/>`: the page's entries newest first.
    pub flip: bool,
}

impl Query {
    /// Whether the form filters at all (a count is only answered for the whole archive).
    pub fn filtered(&self) -> bool {
        let f = &self.filter;
        f.with.is_some()
            || f.start_ms.is_some()
            || f.end_ms.is_some()
            || f.after_id.is_some()
            || f.before_id.is_some()
            || !f.ids.is_empty()
    }

    /// The store query for this page. An RSM `<after/>` or `<before/>` id narrows the form's
    /// `after-id`/`before-id` (both can hold: the page is within both).
    pub fn archive_query(&self) -> ArchiveQuery {
        let mut q = self.filter.clone();
        q.limit = self.max;
        match &self.page {
            Page::First => {}
            Page::After(id) => q.after_id = Some(id.clone()),
            Page::Last => q.reverse = true,
            Page::Before(id) => {
                q.before_id = Some(id.clone());
                q.reverse = true;
            }
        }
        q
    }
}

/// The data form's fields as (var, values), checked to be a `submit` form of our type.
fn form_fields(x: &Element) -> Result<Vec<(String, Vec<String>)>, Refusal> {
    if !matches!(x.attr("type"), Some("submit") | None) {
        return Err(bad("the query form must be of type 'submit'"));
    }
    let mut fields = Vec::new();
    for field in x.children_named("field", FORM_NS) {
        let Some(var) = field.attr("var") else {
            return Err(bad("a form field has no 'var'"));
        };
        let values: Vec<String> = field
            .children_named("value", FORM_NS)
            .map(Element::text)
            .collect();
        fields.push((var.to_owned(), values));
    }
    match fields.iter().find(|(var, _)| var == "FORM_TYPE") {
        Some((_, values)) if values.as_slice() == [NS.to_owned()] => Ok(fields),
        Some(_) => Err(bad(format!("FORM_TYPE must be {NS}"))),
        None => Err(bad("the query form has no FORM_TYPE")),
    }
}

fn one(var: &str, values: &[String]) -> Result<String, Refusal> {
    match values {
        [v] if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(bad(format!("field '{var}' needs exactly one value"))),
    }
}

fn time(var: &str, values: &[String]) -> Result<u64, Refusal> {
    let v = one(var, values)?;
    parse_utc(&v).ok_or_else(|| {
        bad(format!(
            "field '{var}': '{v}' is not a XEP-0082 date and time"
        ))
    })
}

/// Reads `<query/>` (XEP-0313 §4.1) and its RSM `<set/>`. `bare` canonicalises a `with` JID
/// (`None`: not a JID).
///
/// # Errors
/// The precise refusal: `bad-request` for a malformed form, an unknown field, a bad date or
/// `max`, `policy-violation` for a page larger than [`MAX_MAX`].
pub fn read(query: &Element, bare: impl Fn(&str) -> Option<String>) -> Result<Query, Refusal> {
    let mut filter = ArchiveQuery {
        limit: DEFAULT_MAX,
        ..ArchiveQuery::default()
    };
    if let Some(x) = query.child("x", FORM_NS) {
        for (var, values) in form_fields(x)? {
            match var.as_str() {
                "FORM_TYPE" => {}
                "with" => {
                    let v = one(&var, &values)?;
                    let jid =
                        bare(&v).ok_or_else(|| bad(format!("field 'with': '{v}' is not a JID")))?;
                    filter.with = Some(jid);
                }
                "start" => filter.start_ms = Some(time(&var, &values)?),
                "end" => filter.end_ms = Some(time(&var, &values)?),
                "after-id" => filter.after_id = Some(one(&var, &values)?),
                "before-id" => filter.before_id = Some(one(&var, &values)?),
                "ids" => {
                    if values.is_empty() || values.len() > MAX_IDS {
                        return Err(bad(format!("field 'ids' takes 1 to {MAX_IDS} values")));
                    }
                    filter.ids = values.iter().map(|v| v.trim().to_owned()).collect();
                }
                // §4.1.1: a field the server does not support.
                other => {
                    return Err(Refusal {
                        condition: StanzaCondition::FeatureNotImplemented,
                        text: format!("unknown field '{other}'"),
                    })
                }
            }
        }
    }
    if let (Some(start), Some(end)) = (filter.start_ms, filter.end_ms) {
        if start > end {
            return Err(bad("'start' is after 'end'"));
        }
    }
    let mut max = DEFAULT_MAX;
    let mut page = Page::First;
    if let Some(set) = query.child("set", RSM_NS) {
        if let Some(m) = set.child("max", RSM_NS) {
            let text = m.text();
            max = text
                .trim()
                .parse::<u32>()
                .map_err(|_| bad(format!("RSM <max/>: '{}' is not a number", text.trim())))?;
            if max > MAX_MAX {
                return Err(Refusal {
                    condition: StanzaCondition::PolicyViolation,
                    text: format!("at most {MAX_MAX} results per page"),
                });
            }
        }
        let after = set
            .child("after", RSM_NS)
            .map(|e| e.text().trim().to_owned());
        let before = set
            .child("before", RSM_NS)
            .map(|e| e.text().trim().to_owned());
        page = match (after, before) {
            (Some(_), Some(_)) => return Err(bad("RSM <after/> and <before/> together")),
            (Some(a), None) if a.is_empty() => return Err(bad("RSM <after/> needs an id")),
            (Some(a), None) => Page::After(a),
            (None, Some(b)) if b.is_empty() => Page::Last,
            (None, Some(b)) => Page::Before(b),
            (None, None) => Page::First,
        };
        if set.child("index", RSM_NS).is_some() {
            return Err(Refusal {
                condition: StanzaCondition::FeatureNotImplemented,
                text: "RSM <index/> is not supported; page with <after/> and <before/>".into(),
            });
        }
    }
    Ok(Query {
        queryid: query.attr("queryid").map(str::to_owned),
        filter,
        max,
        page,
        flip: query.child("flip-page", NS).is_some(),
    })
}

/// The form a `get` of `<query/>` answers (XEP-0313 §4.1.1): the fields this server takes.
pub fn form() -> Element {
    let field = |var: &str, kind: &str| {
        Element::new("field", FORM_NS)
            .with_attr("var", var)
            .with_attr("type", kind)
    };
    Element::new("query", NS).with_child(
        Element::new("x", FORM_NS)
            .with_attr("type", "form")
            .with_child(
                field("FORM_TYPE", "hidden")
                    .with_child(Element::new("value", FORM_NS).with_text(NS)),
            )
            .with_child(field("with", "jid-single"))
            .with_child(field("start", "text-single"))
            .with_child(field("end", "text-single"))
            .with_child(field("after-id", "text-single"))
            .with_child(field("before-id", "text-single"))
            .with_child(
                // XEP-0313 §4.1.4: a list-multi whose values are open.
                field("ids", "list-multi").with_child(
                    Element::new("validate", "http://jabber.org/protocol/xdata-validate")
                        .with_attr("datatype", "xs:string")
                        .with_child(Element::new(
                            "open",
                            "http://jabber.org/protocol/xdata-validate",
                        )),
                ),
            ),
    )
}

/// One `<result/>` message (XEP-0313 §4.2): the archived message forwarded with its time.
pub fn result_message(
    item: &ArchiveItem,
    message: Element,
    queryid: Option<&str>,
    own_bare: &str,
    to: &str,
) -> Element {
    let mut result = Element::new("result", NS).with_attr("id", &item.id);
    if let Some(q) = queryid {
        result.set_attr("queryid", q);
    }
    Element::new("message", CLIENT_NS)
        .with_attr("from", own_bare)
        .with_attr("to", to)
        .with_child(
            result.with_child(
                Element::new("forwarded", FORWARD_NS)
                    .with_child(
                        Element::new("delay", DELAY_NS)
                            .with_attr("stamp", format_utc_millis(item.at_ms)),
                    )
                    .with_child(message),
            ),
        )
}

/// The `<fin/>` of a page (XEP-0313 §4.3): `complete` when nothing is left in the paging
/// direction, and the RSM `<first/>`/`<last/>` ids of the page (in the order sent), with the
/// count when known.
pub fn fin(ids: &[&str], complete: bool, count: Option<u64>) -> Element {
    let mut set = Element::new("set", RSM_NS);
    if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
        set.push_child(Element::new("first", RSM_NS).with_text(*first));
        set.push_child(Element::new("last", RSM_NS).with_text(*last));
    }
    if let Some(n) = count {
        set.push_child(Element::new("count", RSM_NS).with_text(n.to_string()));
    }
    let mut fin = Element::new("fin", NS);
    if complete {
        fin.set_attr("complete", "true");
    }
    fin.with_child(set)
}
