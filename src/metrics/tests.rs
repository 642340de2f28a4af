use super::*;
use crate::domain::backend::parse_list;
use crate::domain::model::ModelList;
use crate::domain::usage::Outcome;
use crate::upstream::QueueLimits;
use std::collections::HashSet;

fn upstreams() -> Arc<Upstreams> {
    let limits = QueueLimits { max_wait: Duration::from_secs(5), max_per_key: 2 };
    Arc::new(Upstreams::new(parse_list(["http://127.0.0.1:9/?name=one"], 1).unwrap(), vec![], limits, 1))
}

#[test]
fn every_outcome_has_a_verdict_and_the_verdicts_keep_their_names() {
    let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
    assert_eq!(names, ["ok", "refused", "upstream_error", "client_aborted", "cut_off", "error"]);
    assert_eq!(Verdict::of_outcome(Outcome::Ok), Verdict::Ok);
    assert_eq!(Verdict::of_outcome(Outcome::UpstreamUnreachable), Verdict::UpstreamError);
    assert_eq!(Verdict::of_outcome(Outcome::KeyRevoked), Verdict::CutOff);
    for outcome in Outcome::ALL {
        assert!(Verdict::ALL.contains(&Verdict::of_outcome(outcome)));
    }
}

#[test]
fn a_model_is_its_own_label_only_when_a_backend_lists_it_or_the_key_names_it() {
    let up = upstreams();
    assert_eq!(model_label(&up, None, ""), "");
    assert_eq!(model_label(&up, None, "llama3:latest"), OTHER_MODEL);
    let allowed = ModelList::new(vec!["qwen3:8b".into()]).unwrap();
    assert_eq!(model_label(&up, Some(&allowed), "qwen3:8b"), "qwen3:8b");
    assert_eq!(model_label(&up, Some(&allowed), "made-up:1"), OTHER_MODEL);
    let listed: HashSet<String> = ["llama3:latest".to_string()].into();
    up.pool().backends[0].probed(None, listed, HashSet::new());
    assert_eq!(model_label(&up, None, "llama3:latest"), "llama3:latest");
}

#[test]
fn the_exposition_names_every_family_and_the_key_label_can_be_left_out() {
    for key_label in [true, false] {
        let metrics = Metrics::new(key_label).unwrap();
        metrics.watch_backends(upstreams()).unwrap();
        let mut tally = Tally::begin();
        tally.route = "/api/generate";
        tally.model = "llama3:latest".into();
        metrics.ended(&tally, Some(7), Verdict::Ok);
        metrics.charged(&tally, Some(7), 3, 4);
        metrics.refused("quota");
        metrics.first_byte(&mut tally);
        metrics.first_byte(&mut tally);
        metrics.leaves_gate(&tally);
        metrics.db(DbOp::Batch, Duration::from_millis(2));
        let text = metrics.render();
        for name in [
            "ollama_gate_requests_total{",
            "ollama_gate_tokens_total{",
            "ollama_gate_refusals_total{reason=\"quota\"} 1",
            "ollama_gate_request_duration_seconds_bucket{",
            "ollama_gate_time_to_first_byte_seconds_count{route=\"/api/generate\"} 1",
            "ollama_gate_overhead_seconds_count{route=\"/api/generate\"} 1",
            "ollama_gate_db_transaction_seconds_count{op=\"batch\"} 1",
            "ollama_gate_in_flight{backend=\"one\"} 0",
            "ollama_gate_queue_length{backend=\"one\"} 0",
            "ollama_gate_upstream_up{backend=\"one\"} 1",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
        assert_eq!(text.contains("key=\"7\""), key_label, "{text}");
    }
}
