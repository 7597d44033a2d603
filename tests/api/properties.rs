//! Property tests of every parser a client's input reaches (proptest in
//! place of cargo-fuzz): Relay cursors, global ids and the `Decimal` scalar called
//! directly with thousands of inputs each, then the same inputs and arbitrary
//! bodies through the real HTTP path (`properties/http.rs`). Any input gets an
//! exact answer or a clean, coded refusal: never a panic, a 500, or a broker call
//! made of garbage. Seeds are fixed, so a run is reproducible and bounded.

mod http;

use async_graphql::{Number, Value as GqlValue};
use brokergraph::graphql::probe;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A deterministic runner of `cases` cases: no persistence files, no shrinking
/// beyond a bounded number of steps, so a failing run stays bounded in time too.
pub fn runner(cases: u32, seed: u8) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

const SECRET: &[u8] = b"property secret";

/// Strings a client might send where a cursor or id goes: anything, text in the
/// base64url alphabet (which gets past decoding), and near-misses of real ones.
pub fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,200}",
        "[A-Za-z0-9+/=_ %.-]{0,64}",
        (any::<String>(), 0..40usize, "[A-Za-z0-9_-]").prop_map(|(key, at, c)| {
            let real = probe::encode_cursor(SECRET, "positions", None, 3, &key);
            let at = at % real.len();
            let mut edited = real.clone();
            edited.replace_range(at..at + 1, &c);
            if edited == real {
                edited.push('A');
            }
            edited
        }),
    ]
}

#[test]
fn any_string_as_a_cursor_is_refused_with_bad_user_input() {
    runner(3000, 1)
        .run(&hostile_string(), |s| {
            let (code, message) = probe::decode_cursor(SECRET, "positions", &s)
                .expect_err("garbage never verifies as a cursor");
            prop_assert_eq!(code, "BAD_USER_INPUT");
            // The echo is truncated: a megabyte cursor is not sent back whole.
            prop_assert!(message.chars().count() < 200, "{}", message);
            Ok(())
        })
        .unwrap();
}

#[test]
fn cursors_round_trip_only_in_their_own_list_and_key() {
    let strategy = (
        "[a-z:]{1,20}",
        proptest::option::of(any::<String>()),
        any::<usize>(),
        any::<String>(),
    );
    runner(2000, 2)
        .run(&strategy, |(scope, page, index, key)| {
            let cursor = probe::encode_cursor(SECRET, &scope, page.as_deref(), index, &key);
            let decoded = probe::decode_cursor(SECRET, &scope, &cursor).expect("own cursor");
            prop_assert_eq!(decoded, (page, index, key));
            let other_scope = format!("{scope}x");
            prop_assert!(probe::decode_cursor(SECRET, &other_scope, &cursor).is_err());
            prop_assert!(probe::decode_cursor(b"another gateway", &scope, &cursor).is_err());
            Ok(())
        })
        .unwrap();
}

#[test]
fn any_string_as_a_global_id_is_refused_or_names_one_object() {
    let strategy = prop_oneof![
        hostile_string(),
        (
            prop::sample::select(vec!["Order", "Instrument", "Position", "Account"]),
            any::<String>()
        )
            .prop_map(|(kind, local)| probe::encode_id(kind, &local).unwrap()),
    ];
    runner(3000, 3)
        .run(&strategy, |s| match probe::decode_id(&s) {
            Err((code, _)) => {
                prop_assert_eq!(code, "BAD_USER_INPUT");
                Ok(())
            }
            Ok((kind, local)) => {
                prop_assert!(!local.is_empty());
                // One object, one id: a client cache never holds two ids for it.
                prop_assert_eq!(probe::encode_id(&kind, &local), Some(s));
                Ok(())
            }
        })
        .unwrap();
}

/// Plain decimal notation a client may send, including more digits than money
/// ever has.
fn decimal_text() -> impl Strategy<Value = String> {
    ("-?", "[0-9]{1,32}", proptest::option::of("[0-9]{0,32}")).prop_map(|(sign, int, frac)| {
        match frac {
            Some(frac) => format!("{sign}{int}.{frac}"),
            None => format!("{sign}{int}"),
        }
    })
}

/// `text` as a normalized exact number: no sign on zero, no leading or trailing
/// zeros, so two spellings of one number compare equal.
fn normalize(text: &str) -> String {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let body = if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    };
    if body == "0" {
        body
    } else {
        format!("{sign}{body}")
    }
}

#[test]
fn a_decimal_string_is_accepted_exactly_or_refused() {
    runner(3000, 4)
        .run(&decimal_text(), |text| {
            match probe::parse_decimal(GqlValue::String(text.clone())) {
                // Accepted means the very number sent, never a rounded one.
                Ok(parsed) => prop_assert_eq!(normalize(&parsed), normalize(&text)),
                Err(message) => prop_assert!(message.contains("not a decimal"), "{}", message),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn any_string_as_a_decimal_is_a_number_or_a_clean_refusal() {
    runner(3000, 5)
        .run(&hostile_string(), |text| {
            match probe::parse_decimal(GqlValue::String(text.clone())) {
                Ok(parsed) => {
                    let again = probe::parse_decimal(GqlValue::String(parsed.clone()));
                    prop_assert_eq!(again.as_ref(), Ok(&parsed));
                }
                Err(message) => prop_assert!(message.contains("not a decimal"), "{}", message),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn json_integers_are_exact_and_floats_are_refused() {
    let strategy = prop_oneof![
        any::<i64>().prop_map(|i| (Number::from(i), Some(i.to_string()))),
        any::<u64>().prop_map(|u| (Number::from(u), Some(u.to_string()))),
        any::<f64>()
            .prop_filter_map("JSON has no NaN or infinity", Number::from_f64)
            .prop_map(|n| (n, None)),
    ];
    runner(3000, 6)
        .run(&strategy, |(number, exact)| {
            match (
                probe::parse_decimal(GqlValue::Number(number.clone())),
                exact,
            ) {
                (Ok(parsed), Some(exact)) => prop_assert_eq!(parsed, exact),
                (Err(message), None) => prop_assert!(message.contains("float"), "{}", message),
                (other, exact) => prop_assert!(false, "{number}: {other:?} (want {exact:?})"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn other_json_values_are_refused_as_decimals() {
    for value in [
        GqlValue::Null,
        GqlValue::Boolean(true),
        GqlValue::List(vec![GqlValue::String("1".into())]),
        GqlValue::Object(Default::default()),
    ] {
        assert!(probe::parse_decimal(value.clone()).is_err(), "{value}");
    }
}

/// Found by `a_decimal_string_is_accepted_exactly_or_refused`: 29 fractional digits
/// were rounded (here to 0) instead of refused.
#[test]
fn a_decimal_with_more_digits_than_it_holds_is_refused_not_rounded() {
    let tiny = format!("0.{}1", "0".repeat(28));
    let message = probe::parse_decimal(GqlValue::String(tiny)).unwrap_err();
    assert!(message.contains("28 digits"), "{message}");
    let max = format!("0.{}1", "0".repeat(27));
    assert_eq!(probe::parse_decimal(GqlValue::String(max.clone())), Ok(max));
}
