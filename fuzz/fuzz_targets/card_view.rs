//! The Kaizala view parser: any text either is refused or parses to a view whose render is bounded by the
//! input and parses again, with no binding left.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use ticketd::{domain::card::Binding, fuzzing};

/// Short on purpose: a binding's text (`${...}`) is longer, so a render can only shrink the strings.
const VALUE: &str = "v";

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(view) = fuzzing::card_view(json) else {
        return;
    };
    let properties: BTreeMap<String, String> = view
        .bindings()
        .into_iter()
        .filter_map(|binding| match binding {
            Binding::Property(name) => Some((name, VALUE.to_owned())),
            Binding::Ticket(_) => None,
        })
        .collect();
    let rendered = fuzzing::render_card_view(&view, &properties);

    // Unescaping never lengthens a string and every binding is longer than its value.
    let text_bytes: usize = rendered.texts.iter().map(String::len).sum();
    assert!(
        text_bytes <= json.len(),
        "{text_bytes} text bytes from {} input bytes",
        json.len()
    );
    // serde_json writes 1e15 as 1000000000000000.0: numbers may grow 4.5 times, nothing else does.
    let written = serde_json::to_string(&rendered.view).expect("a JSON value serialises");
    assert!(
        written.len() <= 5 * json.len() + 16,
        "render of {} bytes from {} input bytes",
        written.len(),
        json.len()
    );

    let again = fuzzing::card_view(&written).unwrap_or_else(|error| {
        panic!("the render of a valid view does not parse: {error}\n{written}")
    });
    assert!(
        again.bindings().is_empty(),
        "bindings survive a render: {written}"
    );
    assert_eq!(again.schema_version(), view.schema_version());
});
