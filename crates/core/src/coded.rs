//! Enums stored and exchanged as stable text codes, declared once with [`coded_enum!`].
//!
//! Every such enum gets `ALL` (its values in declaration order), `code()` and `parse()` from
//! the one declaration, so a code cannot be added to one and forgotten in the other; an enum
//! shown to people also gets `name_en()` and `name_zh()`.

/// Declares a `Copy` enum with its stable codes (and optionally its English and Chinese names):
///
/// ```
/// ehrshare_core::coded_enum! {
///     /// A colour.
///     pub enum Colour {
///         /// The first.
///         Red = "red";
///         Green = "green";
///     }
/// }
/// assert_eq!(Colour::parse("green"), Some(Colour::Green));
/// assert_eq!(Colour::Red.code(), "red");
/// assert_eq!(Colour::ALL.len(), 2);
///
/// ehrshare_core::coded_enum! {
///     pub enum Side {
///         Left = "left", "Left", "左";
///         Right = "right", "Right", "右";
///     }
/// }
/// assert_eq!(Side::Right.name_zh(), "右");
/// ```
#[macro_export]
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal, $en:literal, $zh:literal;)+
        }
    ) => {
        $crate::coded_enum! {
            $(#[$meta])*
            $vis enum $name { $($(#[$vmeta])* $variant = $code;)+ }
        }

        impl $name {
            /// The English name.
            pub fn name_en(self) -> &'static str {
                match self { $($name::$variant => $en),+ }
            }

            /// The Chinese name.
            pub fn name_zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal;)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($code),+].len()] = [$($name::$variant),+];

            /// The stable code (stored, configured and exchanged).
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// Parses a code; `None` for any other text.
            pub fn parse(code: &str) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::coded_enum! {
        enum Probe {
            A = "a";
            Bee = "bee";
        }
    }

    crate::coded_enum! {
        enum Named {
            One = "one", "One", "一";
        }
    }

    #[test]
    fn codes_round_trip_and_nothing_else_parses() {
        for p in Probe::ALL {
            assert_eq!(Probe::parse(p.code()), Some(p));
        }
        assert_eq!(Probe::parse("A"), None);
        assert_eq!(Probe::parse(""), None);
        assert_eq!(Named::ALL.map(Named::code), ["one"]);
        assert_eq!(Named::One.name_en(), "One");
        assert_eq!(Named::parse("one").map(Named::name_zh), Some("一"));
    }
}
