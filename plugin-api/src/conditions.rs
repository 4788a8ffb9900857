//! The error conditions of XMPP as enums: stream errors (RFC 6120 §4.9.3), stanza errors
//! (RFC 6120 §8.3.3, with the error types of §8.3.2) and SASL failures (RFC 6120 §6.5).
//!
//! A module names a condition by its variant; the host renders the element from
//! [`StreamCondition::as_str`] (and friends), a fixed table of names. Nothing a module sends can
//! therefore inject markup through a condition, and a misspelt condition does not compile.

use serde::{Deserialize, Serialize};

/// Declares a condition enum with its RFC element names, `as_str` and `parse`.
macro_rules! conditions {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every condition, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The element name the RFC defines, e.g. `not-authorized`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }

            /// The condition with this element name, if the RFC defines one.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

conditions! {
    /// A stream error condition (RFC 6120 §4.9.3): the stream is closed after it.
    StreamCondition {
        /// The entity sent XML that cannot be processed.
        BadFormat = "bad-format",
        /// An unsupported or invalid namespace prefix.
        BadNamespacePrefix = "bad-namespace-prefix",
        /// A new stream for this entity replaced this one (a resource conflict).
        Conflict = "conflict",
        /// The peer has not generated traffic for too long.
        ConnectionTimeout = "connection-timeout",
        /// The domain is no longer served.
        HostGone = "host-gone",
        /// The domain is not served.
        HostUnknown = "host-unknown",
        /// A stanza between two servers lacks an addressing attribute.
        ImproperAddressing = "improper-addressing",
        /// A misconfiguration or other internal error.
        InternalServerError = "internal-server-error",
        /// The `from` does not match an authorized JID.
        InvalidFrom = "invalid-from",
        /// The stream or content namespace is wrong.
        InvalidNamespace = "invalid-namespace",
        /// Invalid XML.
        InvalidXml = "invalid-xml",
        /// Data before authentication, or an account's credentials changed or were revoked.
        NotAuthorized = "not-authorized",
        /// XML that is not well-formed.
        NotWellFormed = "not-well-formed",
        /// A local policy was violated (e.g. a size or rate limit).
        PolicyViolation = "policy-violation",
        /// The server cannot reach a remote server.
        RemoteConnectionFailed = "remote-connection-failed",
        /// The server closes the stream to reset it (e.g. the account's password changed).
        Reset = "reset",
        /// The server lacks the resources to serve the stream.
        ResourceConstraint = "resource-constraint",
        /// The entity used a restricted XML feature (comments, processing instructions, DTDs).
        RestrictedXml = "restricted-xml",
        /// The server redirects the entity elsewhere.
        SeeOtherHost = "see-other-host",
        /// The server is being shut down.
        SystemShutdown = "system-shutdown",
        /// Any other condition.
        UndefinedCondition = "undefined-condition",
        /// The encoding is not UTF-8.
        UnsupportedEncoding = "unsupported-encoding",
        /// A feature the entity requires is not offered.
        UnsupportedFeature = "unsupported-feature",
        /// A first-level child the server does not support.
        UnsupportedStanzaType = "unsupported-stanza-type",
        /// The stream version is not supported.
        UnsupportedVersion = "unsupported-version",
    }
}

conditions! {
    /// A stanza error condition (RFC 6120 §8.3.3).
    StanzaCondition {
        /// The request was malformed.
        BadRequest = "bad-request",
        /// A resource or session with this name already exists.
        Conflict = "conflict",
        /// The feature is not implemented by the recipient.
        FeatureNotImplemented = "feature-not-implemented",
        /// The sender lacks the permission.
        Forbidden = "forbidden",
        /// The recipient is no longer at this address.
        Gone = "gone",
        /// A misconfiguration or other internal error.
        InternalServerError = "internal-server-error",
        /// The addressed item does not exist.
        ItemNotFound = "item-not-found",
        /// A malformed JID.
        JidMalformed = "jid-malformed",
        /// The request does not meet the recipient's criteria.
        NotAcceptable = "not-acceptable",
        /// The recipient does not allow this action.
        NotAllowed = "not-allowed",
        /// The sender must authenticate first.
        NotAuthorized = "not-authorized",
        /// A local policy was violated.
        PolicyViolation = "policy-violation",
        /// The recipient is temporarily unavailable.
        RecipientUnavailable = "recipient-unavailable",
        /// The recipient redirects the request.
        Redirect = "redirect",
        /// Registration is required first.
        RegistrationRequired = "registration-required",
        /// The remote server does not exist.
        RemoteServerNotFound = "remote-server-not-found",
        /// The remote server could not be reached in time.
        RemoteServerTimeout = "remote-server-timeout",
        /// The server lacks the resources.
        ResourceConstraint = "resource-constraint",
        /// The service does not exist or is not offered to the sender.
        ServiceUnavailable = "service-unavailable",
        /// A subscription is required first.
        SubscriptionRequired = "subscription-required",
        /// Any other condition.
        UndefinedCondition = "undefined-condition",
        /// The request was understood but not expected now.
        UnexpectedRequest = "unexpected-request",
    }
}

impl StanzaCondition {
    /// The error type RFC 6120 §8.3.3 gives each condition in its examples, which the anchors
    /// send too (a module that needs another builds the error itself).
    pub const fn default_type(self) -> ErrorType {
        use StanzaCondition as C;
        match self {
            C::BadRequest | C::JidMalformed | C::NotAcceptable | C::PolicyViolation => {
                ErrorType::Modify
            }
            C::Redirect | C::Gone => ErrorType::Modify,
            C::Forbidden | C::NotAuthorized | C::RegistrationRequired | C::SubscriptionRequired => {
                ErrorType::Auth
            }
            C::RecipientUnavailable | C::RemoteServerTimeout | C::ResourceConstraint => {
                ErrorType::Wait
            }
            C::Conflict
            | C::FeatureNotImplemented
            | C::InternalServerError
            | C::ItemNotFound
            | C::NotAllowed
            | C::RemoteServerNotFound
            | C::ServiceUnavailable
            | C::UndefinedCondition
            | C::UnexpectedRequest => ErrorType::Cancel,
        }
    }
}

conditions! {
    /// The `type` of a stanza error (RFC 6120 §8.3.2): what the sender may do about it.
    ErrorType {
        /// Retry after providing credentials.
        Auth = "auth",
        /// Do not retry: the error cannot be remedied.
        Cancel = "cancel",
        /// Proceed: the condition was only a warning.
        Continue = "continue",
        /// Retry after changing the data sent.
        Modify = "modify",
        /// Retry after waiting: the error is temporary.
        Wait = "wait",
    }
}

conditions! {
    /// A SASL failure condition (RFC 6120 §6.5), for both SASL profiles.
    SaslCondition {
        /// The client aborted the exchange.
        Aborted = "aborted",
        /// The account is disabled.
        AccountDisabled = "account-disabled",
        /// The credentials (a password, a FAST token) expired or were revoked.
        CredentialsExpired = "credentials-expired",
        /// The mechanism needs an encrypted stream.
        EncryptionRequired = "encryption-required",
        /// The data was not valid base64.
        IncorrectEncoding = "incorrect-encoding",
        /// The authorization identity is malformed or not allowed.
        InvalidAuthzid = "invalid-authzid",
        /// The mechanism is not offered.
        InvalidMechanism = "invalid-mechanism",
        /// The request or response was malformed.
        MalformedRequest = "malformed-request",
        /// The mechanism is weaker than policy allows for this account.
        MechanismTooWeak = "mechanism-too-weak",
        /// The credentials were wrong (also for accounts that do not exist, indistinguishably).
        NotAuthorized = "not-authorized",
        /// A temporary failure on the server's side.
        TemporaryAuthFailure = "temporary-auth-failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_condition() {
        for c in StreamCondition::ALL {
            assert_eq!(StreamCondition::parse(c.as_str()), Some(*c));
        }
        for c in StanzaCondition::ALL {
            assert_eq!(StanzaCondition::parse(c.as_str()), Some(*c));
        }
        for c in SaslCondition::ALL {
            assert_eq!(SaslCondition::parse(c.as_str()), Some(*c));
        }
        assert_eq!(StreamCondition::ALL.len(), 25, "RFC 6120 §4.9.3 defines 25");
        assert_eq!(StanzaCondition::ALL.len(), 22, "RFC 6120 §8.3.3 defines 22");
        assert_eq!(StanzaCondition::parse("not-a-condition/><x"), None);
    }

    #[test]
    fn default_types_follow_the_rfc_examples() {
        assert_eq!(
            StanzaCondition::BadRequest.default_type(),
            ErrorType::Modify
        );
        assert_eq!(
            StanzaCondition::ServiceUnavailable.default_type(),
            ErrorType::Cancel
        );
        assert_eq!(StanzaCondition::Forbidden.default_type(), ErrorType::Auth);
        assert_eq!(
            StanzaCondition::ResourceConstraint.default_type(),
            ErrorType::Wait
        );
    }
}
