//! Files of real-world data under `tests/fixtures/`.

/// The Kaizala card package the card tests load, kept in the repository so that the tests need nothing outside
/// it.
pub const KAIZALA_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kaizala");

/// The fixed header of the fixture's card view.
pub const KAIZALA_CARD_HEADER: &str = "XYZ CUSTOMER CARE";

/// A file of the Kaizala fixture package, as text.
pub fn kaizala_fixture(name: &str) -> String {
    let path = format!("{KAIZALA_FIXTURES}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read fixture {path}: {err}"))
}
