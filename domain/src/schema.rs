//! The schema version each event type is written at, declared next to its enum.

/// Declares the schema version of every variant of an event enum: `fn schema_version(&self)`
/// (an exhaustive match, so a new variant does not compile until it has a version) and
/// `SCHEMA_VERSIONS`, the table [`crate::upcast::current_version`] reads by event type.
/// A new shape of an event is a bumped number here plus a step in [`crate::upcast`].
macro_rules! schema_versions {
    ($enum:ident { $($variant:ident => $version:literal),+ $(,)? }) => {
        impl $enum {
            /// The schema version this event is written at today.
            pub fn schema_version(&self) -> u32 {
                match self {
                    $(Self::$variant { .. } => $version,)+
                }
            }

            /// Every event type of this enum (its variant names) with its current version.
            pub const SCHEMA_VERSIONS: &'static [(&'static str, u32)] = &[$((stringify!($variant), $version)),+];
        }
    };
}

pub(crate) use schema_versions;
