use super::*;

fn status(
    code: Code,
    limit: Option<u32>,
    remaining: u32,
    reset_s: Option<i64>,
) -> DescriptorStatus {
    DescriptorStatus {
        code: code as i32,
        current_limit: limit.map(|n| RateLimit {
            requests_per_unit: n,
            unit: Unit::Minute as i32,
            name: String::new(),
        }),
        limit_remaining: remaining,
        duration_until_reset: reset_s.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
    }
}

fn response(overall: Code, statuses: Vec<DescriptorStatus>) -> Vec<u8> {
    RateLimitResponse {
        overall_code: overall as i32,
        statuses,
        response_headers_to_add: Vec::new(),
    }
    .encode_to_vec()
}

#[test]
fn a_request_encodes_with_rls_proto_field_numbers() {
    let request = RateLimitRequest {
        domain: "d".into(),
        descriptors: vec![Descriptor {
            entries: vec![Entry {
                key: "k".into(),
                value: "v".into(),
            }],
        }],
        hits_addend: 1,
    };
    // domain (1, "d"); descriptors (2, {entries (1, {key (1, "k"), value (2, "v")})}); hits (3, 1)
    assert_eq!(
        request.encode_to_vec(),
        vec![
            0x0a, 1, b'd', 0x12, 8, 0x0a, 6, 0x0a, 1, b'k', 0x12, 1, b'v', 0x18, 1
        ]
    );
}

#[test]
fn statuses_become_verdicts_in_descriptor_order() {
    let bytes = response(
        Code::OverLimit,
        vec![
            status(Code::Ok, Some(100), 7, Some(30)),
            status(Code::OverLimit, Some(5), 0, Some(12)),
        ],
    );
    assert_eq!(
        read_response(&bytes, 2),
        Ok(vec![
            Verdict::Ok {
                limit: Some(100),
                remaining: Some(7),
                reset: Some(Duration::from_secs(30)),
            },
            Verdict::OverLimit {
                limit: Some(5),
                reset: Some(Duration::from_secs(12)),
            },
        ])
    );
}

#[test]
fn no_statuses_means_the_overall_code_for_each() {
    // Limitador's server answers with the overall code alone.
    let bytes = response(Code::OverLimit, Vec::new());
    assert_eq!(
        read_response(&bytes, 1),
        Ok(vec![Verdict::OverLimit {
            limit: None,
            reset: None
        }])
    );
    let bytes = response(Code::Ok, Vec::new());
    assert_eq!(
        read_response(&bytes, 1),
        Ok(vec![Verdict::Ok {
            limit: None,
            remaining: None,
            reset: None
        }])
    );
}

#[test]
fn unusable_answers_are_failures() {
    assert_eq!(
        read_response(&response(Code::Unknown, Vec::new()), 1),
        Err(Failure::UnknownCode)
    );
    assert_eq!(read_response(&[0xff, 0xff], 1), Err(Failure::Undecodable));
    // An unknown status is read as the overall code; negative durations as zero.
    let mut odd = status(Code::Unknown, None, 0, Some(-5));
    odd.code = 9;
    assert_eq!(
        read_response(&response(Code::Ok, vec![odd]), 1),
        Ok(vec![Verdict::Ok {
            limit: None,
            remaining: None,
            reset: Some(Duration::ZERO)
        }])
    );
}

#[test]
fn grpc_frames_round_trip_and_refuse_the_rest() {
    let frame = grpc_frame(b"abc").expect("small");
    assert_eq!(frame, vec![0, 0, 0, 0, 3, b'a', b'b', b'c']);
    assert_eq!(grpc_message(&frame), Some(&b"abc"[..]));
    assert_eq!(grpc_message(&[1, 0, 0, 0, 0]), None, "compressed");
    assert_eq!(grpc_message(&[0, 0, 0, 0, 4, 1]), None, "short");
    assert_eq!(grpc_message(&[0, 0, 0, 0, 0, 1]), None, "trailing bytes");
    assert_eq!(grpc_message(&[0, 0]), None);
    assert_eq!(grpc_message(&[0, 0, 0, 0, 0]), Some(&b""[..]));
}
