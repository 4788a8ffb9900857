//! XEP-0198 stream management as the load modes' clients speak it: enable with resumption, and
//! answer the server's `<r/>` with the stanzas handled so far.

use crate::failure::Failure;
use crate::net::Conn;

/// The namespace.
pub(crate) const SM: &str = "urn:xmpp:sm:3";

/// `<enable resume='true'/>`, answered with `<enabled/>`.
pub(crate) async fn enable_sm(conn: &mut Conn) -> Result<(), Failure> {
    conn.send(&format!("<enable xmlns='{SM}' resume='true'/>"))
        .await?;
    match conn.read_until(&["<enabled", "<failed"]).await? {
        (0, _) => Ok(()),
        _ => Err(Failure::Protocol("stream management refused".into())),
    }
}

/// A reader's side of the counting: what it read so far, and whether the server asked.
#[derive(Debug, Default)]
pub(crate) struct Handled {
    /// Stanzas read since `<enabled/>`.
    pub(crate) count: u64,
}

impl Handled {
    /// Count the stanzas in `text` (just read); the `<a/>` to send if the server asked in it.
    pub(crate) fn read(&mut self, text: &str) -> Option<String> {
        self.count += crate::xml::count_stanzas(text);
        text.contains(&format!("<r xmlns='{SM}'/>"))
            .then(|| format!("<a xmlns='{SM}' h='{}'/>", self.count))
    }
}
