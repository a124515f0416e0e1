//! Page tokens: any token a client sends is refused or decodes to a cursor that re-encodes to a token
//! decoding to it again; the server's own tokens are fixed points of decode then encode, and no other query
//! accepts them.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use ticketd::{domain::page::Cursor, fuzzing};

/// The query of the seed tokens in corpus/page_token (one query, so the fuzzer keeps its fingerprint).
const SEED_QUERY: &str = "fuzz";

/// Cursors as the server issues them, for each kind of page token.
#[derive(Arbitrary, Debug)]
struct Issued {
    query: String,
    key: i64,
    id: i64,
    name: String,
    other: String,
}

fn client_token(token: &str) {
    let query = fuzzing::query_fingerprint(SEED_QUERY);
    if let Ok(Some(cursor)) = fuzzing::decode_cursor_token(&query, token) {
        let issued = fuzzing::encode_cursor_token(&query, Some(cursor));
        assert_eq!(
            fuzzing::decode_cursor_token(&query, &issued).ok(),
            Some(Some(cursor))
        );
    }
    if let Ok(Some(name)) = fuzzing::decode_name_token(&query, token) {
        let issued = fuzzing::encode_name_token(&query, Some(name.clone()));
        assert_eq!(
            fuzzing::decode_name_token(&query, &issued).ok(),
            Some(Some(name))
        );
    }
    if let Ok(Some(pair)) = fuzzing::decode_pair_token(&query, token) {
        let issued = fuzzing::encode_pair_token(&query, Some(pair.clone()));
        assert_eq!(
            fuzzing::decode_pair_token(&query, &issued).ok(),
            Some(Some(pair))
        );
    }
}

fn issued_tokens(issued: Issued) {
    let query = fuzzing::query_fingerprint(&issued.query);
    let elsewhere = fuzzing::query_fingerprint(&format!("{} other", issued.query));

    let cursor = Cursor {
        key: issued.key,
        id: issued.id,
    };
    let token = fuzzing::encode_cursor_token(&query, Some(cursor));
    let decoded = fuzzing::decode_cursor_token(&query, &token).expect("an issued token decodes");
    assert_eq!(decoded, Some(cursor));
    assert_eq!(fuzzing::encode_cursor_token(&query, decoded), token);
    assert!(fuzzing::decode_cursor_token(&elsewhere, &token).is_err());

    let token = fuzzing::encode_name_token(&query, Some(issued.name.clone()));
    let decoded = fuzzing::decode_name_token(&query, &token).expect("an issued token decodes");
    assert_eq!(decoded.as_deref(), Some(issued.name.as_str()));
    assert_eq!(fuzzing::encode_name_token(&query, decoded), token);

    let pair = (issued.name, issued.other);
    let token = fuzzing::encode_pair_token(&query, Some(pair.clone()));
    let decoded = fuzzing::decode_pair_token(&query, &token).expect("an issued token decodes");
    assert_eq!(decoded.as_ref(), Some(&pair));
    assert_eq!(fuzzing::encode_pair_token(&query, decoded), token);
}

fuzz_target!(|data: &[u8]| {
    // The same bytes serve twice: as the text a client sends, and as the seed of cursors the server issues.
    if let Ok(token) = std::str::from_utf8(data) {
        client_token(token);
    }
    // Names the server issues come from stored rows, and no stored string holds U+0000 (every request string is
    // refused with one, and tokens holding one are refused as forged).
    if let Ok(issued) = Issued::arbitrary_take_rest(Unstructured::new(data))
        && !issued.name.contains('\0')
        && !issued.other.contains('\0')
    {
        issued_tokens(issued);
    }
});
