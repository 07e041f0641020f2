//! The enumerations of the data model and the account state machine.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "must be one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// What an account is for. `admin` and `service` accounts are trusted by the native
    /// authorizer; `user` accounts act on themselves.
    AccountType { Admin => "admin", User => "user", Service => "service" }
);

string_enum!(
    /// Anchore's account lifecycle: enabled → disabled → deleting (→ gone).
    AccountState { Enabled => "enabled", Disabled => "disabled", Deleting => "deleting" }
);

string_enum!(
    /// What an API key was issued for. A `session` key (a browser's, in the forward-auth
    /// cookie) authenticates forward-auth checks and logout only; a `console` key (the
    /// admin console's cookie) authenticates the API only from that cookie, with the
    /// console's cross-site checks.
    KeyKind { Login => "login", Personal => "personal", AccessToken => "access-token", Session => "session", Console => "console" }
);

string_enum!(
    /// REANA's access-token lifecycle: a user requests one, an administrator grants it
    /// (`active`) or revokes it. No status: the user never asked.
    AccessTokenStatus { Requested => "requested", Active => "active", Revoked => "revoked" }
);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TransitionError {
    #[error("the admin account must stay enabled")]
    AdminAccount,
    #[error("account is being deleted")]
    Deleting,
    #[error("account must be disabled before it can be deleted; disable it first")]
    DeleteFromEnabled,
    #[error("state can only be set to enabled or disabled")]
    NotSettable,
}

impl AccountState {
    /// May an account named `account` in state `self` be put into `to` through
    /// `PUT /state`? Setting the current state again is allowed (idempotent).
    pub fn check_set(self, account: &str, to: AccountState) -> Result<(), TransitionError> {
        if to == AccountState::Deleting {
            return Err(TransitionError::NotSettable);
        }
        if self == AccountState::Deleting {
            return Err(TransitionError::Deleting);
        }
        if account == crate::names::ADMIN_ACCOUNT && to != AccountState::Enabled {
            return Err(TransitionError::AdminAccount);
        }
        Ok(())
    }

    /// May the account be deleted? Only from `disabled`.
    pub fn check_delete(self, account: &str) -> Result<(), TransitionError> {
        if account == crate::names::ADMIN_ACCOUNT {
            return Err(TransitionError::AdminAccount);
        }
        match self {
            AccountState::Disabled => Ok(()),
            AccountState::Enabled => Err(TransitionError::DeleteFromEnabled),
            AccountState::Deleting => Err(TransitionError::Deleting),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_strings() {
        for t in AccountType::ALL {
            assert_eq!(t.as_str().parse::<AccountType>().unwrap(), *t);
        }
        assert_eq!(
            "access-token".parse::<KeyKind>().unwrap(),
            KeyKind::AccessToken
        );
        assert!("Admin".parse::<AccountType>().is_err());
    }

    #[test]
    fn state_machine() {
        use AccountState::*;
        assert!(Enabled.check_set("acme", Disabled).is_ok());
        assert!(Disabled.check_set("acme", Enabled).is_ok());
        assert!(Enabled.check_set("acme", Enabled).is_ok());
        assert_eq!(
            Enabled.check_set("acme", Deleting),
            Err(TransitionError::NotSettable)
        );
        assert_eq!(
            Deleting.check_set("acme", Enabled),
            Err(TransitionError::Deleting)
        );
        assert_eq!(
            Enabled.check_set("admin", Disabled),
            Err(TransitionError::AdminAccount)
        );
        assert!(Enabled.check_set("admin", Enabled).is_ok());
        assert!(Disabled.check_delete("acme").is_ok());
        assert_eq!(
            Enabled.check_delete("acme"),
            Err(TransitionError::DeleteFromEnabled)
        );
        assert_eq!(
            Deleting.check_delete("acme"),
            Err(TransitionError::Deleting)
        );
        assert_eq!(
            Disabled.check_delete("admin"),
            Err(TransitionError::AdminAccount)
        );
    }
}
