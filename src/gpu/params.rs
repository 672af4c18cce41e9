//! Typed kernel parameters. A kernel family declares its parameters once, as a Rust
//! struct with `gpu_params!`; the driver fills the struct and uploads `words()`, and the
//! shader reads each field through a generated WGSL accessor `p_<field>()` (prepended
//! to its source by the pipeline cache), so the two sides cannot disagree on a word
//! number. Words `0..SLOTS` stay the window offsets the dispatcher writes.

use super::{PARAMS, SLOTS};

/// First word a parameter struct may use (after the window offsets, rounded to 8).
pub const FIRST_WORD: usize = if SLOTS <= 8 { 8 } else { SLOTS };

/// A scalar that fits one parameter word, and the prelude function that reads it.
pub trait ParamWord: Copy {
    const READER: &'static str;
    fn word(self) -> u32;
}

impl ParamWord for u32 {
    const READER: &'static str = "pu";
    fn word(self) -> u32 {
        self
    }
}

impl ParamWord for f32 {
    const READER: &'static str = "pf";
    fn word(self) -> u32 {
        self.to_bits()
    }
}

impl ParamWord for i32 {
    const READER: &'static str = "pi";
    fn word(self) -> u32 {
        self as u32
    }
}

/// `gpu_params! { pub struct Name { field: u32, other: f32 } }`: the struct, its
/// `words()` and its WGSL accessors `wgsl()`.
#[macro_export]
macro_rules! gpu_params {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        $vis struct $name { $($(#[$fm])* pub $field: $ty),* }

        impl $name {
            /// The parameter block: the fields in declaration order from `FIRST_WORD`.
            pub fn words(&self) -> [u32; $crate::gpu::PARAMS] {
                let mut q = [0u32; $crate::gpu::PARAMS];
                let mut i = $crate::gpu::params::FIRST_WORD;
                $( q[i] = $crate::gpu::params::ParamWord::word(self.$field); i += 1; )*
                let _ = i;
                q
            }

            /// One WGSL function `p_<field>()` per field, reading its word.
            pub fn wgsl() -> String {
                let mut s = String::new();
                let mut i = $crate::gpu::params::FIRST_WORD;
                $(
                    s.push_str(&format!("fn p_{}() -> {} {{ return {}({}u); }}\n", stringify!($field),
                                        stringify!($ty), <$ty as $crate::gpu::params::ParamWord>::READER, i));
                    i += 1;
                )*
                let _ = i;
                s
            }
        }
    };
}

const _: () = assert!(FIRST_WORD < PARAMS);

#[cfg(test)]
mod tests {
    crate::gpu_params! {
        struct Demo { rows: u32, scale: f32, shift: i32 }
    }

    #[test]
    fn words_and_accessors_agree() {
        let d = Demo { rows: 7, scale: 0.5, shift: -2 };
        let w = d.words();
        assert_eq!(w[8], 7);
        assert_eq!(f32::from_bits(w[9]), 0.5);
        assert_eq!(w[10] as i32, -2);
        let src = Demo::wgsl();
        assert!(src.contains("fn p_rows() -> u32 { return pu(8u); }"));
        assert!(src.contains("fn p_scale() -> f32 { return pf(9u); }"));
        assert!(src.contains("fn p_shift() -> i32 { return pi(10u); }"));
    }
}
