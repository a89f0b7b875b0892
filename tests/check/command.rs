//! Goal: `run_check` maps verdicts to exit codes 0 / 1 / 3 and reports every kind of bad input
//! as an error naming the file, line and problem (the CLI exits 2 on it).

use std::path::PathBuf;

use faultline::check::command::{run_check, CheckRequest};
use faultline::check::{Call, History, Outcome, Ret};

fn peer(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/peer-histories/porcupine")
        .join(file)
}

fn request(format: &str, model: &str, path: PathBuf) -> CheckRequest {
    CheckRequest {
        format: format.into(),
        model: model.into(),
        path,
        json: false,
        max_steps: None,
    }
}

fn run(req: &CheckRequest) -> (Result<i32, String>, String) {
    let mut out = Vec::new();
    let code = run_check(req, &mut out).map_err(|e| e.to_string());
    (code, String::from_utf8(out).unwrap())
}

/// Writes `text` to a file unique to this test under the target directory.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn exit_codes_follow_the_verdict() {
    let (code, out) = run(&request(
        "etcd",
        "cas-register",
        peer("jepsen/etcd_002.log"),
    ));
    assert_eq!(code, Ok(0), "{out}");
    assert!(out.contains("verdict: linearizable"), "{out}");
    let (code, out) = run(&request(
        "etcd",
        "cas-register",
        peer("jepsen/etcd_000.log"),
    ));
    assert_eq!(code, Ok(1), "{out}");
    assert!(
        out.contains("verdict: NOT linearizable") && out.contains("<- this one"),
        "{out}"
    );
    let mut tiny = request("etcd", "cas-register", peer("jepsen/etcd_002.log"));
    tiny.max_steps = Some(5);
    let (code, out) = run(&tiny);
    assert_eq!(code, Ok(3), "{out}");
    assert!(out.contains("verdict: UNKNOWN"), "{out}");
}

#[test]
fn output_is_deterministic_and_json_is_valid() {
    let mut req = request("kv", "kv", peer("kv/c10-bad.txt"));
    assert_eq!(run(&req).1, run(&req).1);
    req.json = true;
    let (code, out) = run(&req);
    assert_eq!(code, Ok(1));
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["result"]["verdict"], "invalid");
    assert_eq!(value["exit_code"], 1);
}

#[test]
fn bad_requests_name_the_accepted_values() {
    let (code, _) = run(&request("csv", "kv", peer("kv/c01-ok.txt")));
    assert!(code.unwrap_err().contains("accepted: etcd, kv, json"));
    let (code, _) = run(&request("kv", "graph", peer("kv/c01-ok.txt")));
    assert!(code.unwrap_err().contains("unknown model \"graph\""));
    let (code, _) = run(&request("kv", "register", peer("kv/c01-ok.txt")));
    assert!(code.unwrap_err().contains("accepted models: kv"));
    let (code, _) = run(&request("kv", "kv", peer("kv/missing.txt")));
    assert!(code.unwrap_err().contains("missing.txt: cannot read"));
    // The etcd logs hold cas operations: the plain register model rejects them as input.
    let (code, _) = run(&request("etcd", "register", peer("jepsen/etcd_000.log")));
    assert!(code
        .unwrap_err()
        .contains("not accepted by the register model"));
}

#[test]
fn malformed_lines_name_file_and_line() {
    let etcd = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\tx\n";
    let path = temp_file("bad_etcd.log", etcd);
    let err = run(&request("etcd", "cas-register", path)).0.unwrap_err();
    assert!(
        err.ends_with("bad_etcd.log:2: bad value for :ok :read: \"x\""),
        "{err}"
    );
    let kv = "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 0}\n";
    let path = temp_file("bad_kv.txt", kv);
    let err = run(&request("kv", "kv", path)).0.unwrap_err();
    assert!(err.ends_with("bad_kv.txt:2: missing :type"), "{err}");
    let path = temp_file("bad.json", "{\"ops\": [{\"process\": 1}]}");
    let err = run(&request("json", "register", path)).0.unwrap_err();
    assert!(err.contains("bad.json:1: missing field"), "{err}");
}

#[test]
fn json_histories_round_trip_through_every_json_model() {
    let mut h = History::new();
    let id = h.invoke(
        0,
        Some(5),
        10,
        Call::Create {
            path: "/a".into(),
            data: "x".into(),
        },
    );
    h.complete(id, 20, Outcome::Ok, Some(Ret::Done), Some(0x1_0000_0001));
    let id = h.invoke(1, Some(6), 30, Call::GetData { path: "/a".into() });
    let ret = Ret::Data {
        data: "x".into(),
        version: 0,
    };
    h.complete(id, 40, Outcome::Ok, Some(ret), Some(0x1_0000_0001));
    let text = h.to_json();
    assert_eq!(History::from_json(&text).unwrap(), h);
    let path = temp_file("zk.json", &text);
    for model in ["znode", "zookeeper", "zookeeper-strict"] {
        let (code, out) = run(&request("json", model, path.clone()));
        assert_eq!(code, Ok(0), "{model}: {out}");
    }
    let (code, _) = run(&request("json", "kafka-log", path));
    assert!(code
        .unwrap_err()
        .contains("not accepted by the kafka-log model"));
}

#[test]
fn etcd_000_witness_is_pinned() {
    // The search is deterministic: the same operation, state and prefix every time.
    let mut req = request("etcd", "cas-register", peer("jepsen/etcd_000.log"));
    req.json = true;
    let (code, out) = run(&req);
    assert_eq!(code, Ok(1));
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    let violation = &value["result"]["violations"][0];
    assert_eq!(violation["kind"], "not-linearizable");
    assert_eq!(violation["op"], 43);
    assert_eq!(violation["window"], serde_json::json!([84, 85]));
    assert_eq!(violation["state"], "Some(0)");
    assert_eq!(
        violation["linearized"],
        serde_json::json!([37, 38, 39, 41, 40, 42])
    );
}

#[test]
fn every_call_and_result_round_trips_through_json() {
    use faultline::check::{PolledRecord, ZkError};
    let calls = vec![
        Call::Read { key: "k".into() },
        Call::Write {
            key: String::new(),
            value: -3,
        },
        Call::Cas {
            key: "k".into(),
            expected: 1,
            new: 2,
        },
        Call::Get { key: "k".into() },
        Call::Put {
            key: "k".into(),
            value: "v".into(),
        },
        Call::Append {
            key: "k".into(),
            value: "v".into(),
        },
        Call::Create {
            path: "/a".into(),
            data: "d".into(),
        },
        Call::Delete {
            path: "/a".into(),
            version: -1,
        },
        Call::SetData {
            path: "/a".into(),
            data: "d".into(),
            version: 3,
        },
        Call::GetData { path: "/a".into() },
        Call::Exists { path: "/a".into() },
        Call::SyncGetData { path: "/a".into() },
        Call::Send {
            key: None,
            value: "v".into(),
        },
        Call::Poll,
    ];
    let rets = vec![
        Ret::Value { value: None },
        Ret::Done,
        Ret::Text { value: "t".into() },
        Ret::Data {
            data: "d".into(),
            version: 2,
        },
        Ret::Stat { version: 4 },
        Ret::Exists { version: Some(1) },
        Ret::Error {
            code: ZkError::BadVersion,
        },
        Ret::Offset { offset: 9 },
        Ret::Records {
            records: vec![PolledRecord {
                key: "k".into(),
                offset: 1,
                value: "v".into(),
            }],
        },
    ];
    let mut h = History::new();
    for (i, call) in calls.into_iter().enumerate() {
        let id = h.invoke(i as u64, Some(7), i as u64, call);
        let ret = rets.get(i).cloned();
        h.complete(id, i as u64 + 1, Outcome::Fail, ret, Some(i as u64));
    }
    h.invoke(99, None, 100, Call::Poll);
    let text = h.to_json();
    assert_eq!(History::from_json(&text).unwrap(), h);
    assert!(text.contains("\"f\": \"sync_get_data\""), "{text}");
    assert!(text.contains("\"code\": \"bad_version\""), "{text}");
}
