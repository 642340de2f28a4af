use super::super::gofold::fold_name;
use super::*;
use std::collections::HashSet;

const ALL: &[Kind] = &[
    Kind::Generate,
    Kind::Chat,
    Kind::Embed,
    Kind::Embeddings,
    Kind::OpenAiChat,
    Kind::OpenAiCompletions,
    Kind::OpenAiEmbeddings,
    Kind::OpenAiResponses,
    Kind::AnthropicMessages,
    Kind::AnthropicCountTokens,
    Kind::Show,
    Kind::Pull,
    Kind::Create,
    Kind::Copy,
    Kind::Delete,
];

/// Walks every struct once (the Responses tools nest themselves).
fn check(shape: &Shape, seen: &mut HashSet<usize>) {
    match shape {
        Shape::Struct(fields) => {
            let mut folded = HashSet::new();
            for f in fields.iter() {
                assert!(f.name.is_ascii(), "{}", f.name);
                assert!(folded.insert(fold_name(f.name)), "two fields fold alike: {}", f.name);
                check(&f.shape, seen);
            }
        }
        Shape::List(inner) => {
            if seen.insert(*inner as *const Shape as usize) {
                check(inner, seen);
            }
        }
        Shape::Opaque => {}
    }
}

#[test]
fn every_json_route_has_a_schema_whose_fields_are_ascii_and_fold_apart() {
    let mut seen = HashSet::new();
    for kind in ALL {
        let route = of(*kind).unwrap_or_else(|| panic!("{kind:?} has no schema"));
        check(route.shape, &mut seen);
    }
    assert!(of(Kind::Blob).is_none());
}

#[test]
fn the_output_field_is_a_field_of_the_route() {
    for kind in ALL {
        let route = of(*kind).unwrap();
        let Shape::Struct(fields) = route.shape else { panic!("{kind:?} is not a struct") };
        let has = |name: &str| fields.iter().any(|f| f.name == name);
        match route.output {
            Some(OutputField::NumPredict) => assert!(has("options"), "{kind:?}"),
            Some(OutputField::Top(name)) => assert!(has(name), "{kind:?}"),
            None => {}
        }
        assert_eq!(route.stream_default.is_some(), has("stream"), "{kind:?}");
    }
}
