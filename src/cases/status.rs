//! The status workflow of a case, as one pure state machine (no I/O; tested exhaustively below).
//!
//! ```text
//! open ──► in_progress ◄──► waiting          (waiting: for the person or a partner)
//!   │           │              │
//!   └───────────┴──────┬───────┘   referred (set by referrals while a referral is under way) ──► the same
//!                      ▼
//!        closed(reason) ◄── closure_requested ◄── a child case closed by a caseworker or operator
//!              │                   │ rejected
//!              └── reopen ──► in_progress ◄┘
//! ```
//!
//! - Closing needs one of the [`ClosureReason`]s; no other change takes one.
//! - A child case closes only with a supervisor: anyone else's close becomes a closure request, which a
//!   supervisor approves (closed, with the requested reason) or rejects (back to `in_progress`).
//! - While a closure is requested, only a supervisor changes the status (closing it, or taking it back to
//!   `in_progress`).
//! - `referred` is never set through a status change: the referral workflow sets and clears it.
//! - Asking for the status a case already has is refused like any impossible change.

use serde::{Deserialize, Serialize};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not yet taken up.
    Open,
    InProgress,
    /// Waiting for the person or a partner.
    Waiting,
    /// A referral is under way.
    Referred,
    /// A child case's closure awaits a supervisor.
    ClosureRequested,
    Closed,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 6] = [
        Status::Open,
        Status::InProgress,
        Status::Waiting,
        Status::Referred,
        Status::ClosureRequested,
        Status::Closed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::Waiting => "waiting",
            Status::Referred => "referred",
            Status::ClosureRequested => "closure_requested",
            Status::Closed => "closed",
        }
    }

    /// From the stored or requested name.
    pub fn parse(raw: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Why a case was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosureReason {
    Resolved,
    ReferredOut,
    NoFurtherContact,
    /// Merged into another case.
    Duplicate,
    NotTrafficking,
    OutOfScope,
    WithdrawnByPerson,
}

impl ClosureReason {
    /// Every reason.
    pub const ALL: [ClosureReason; 7] = [
        ClosureReason::Resolved,
        ClosureReason::ReferredOut,
        ClosureReason::NoFurtherContact,
        ClosureReason::Duplicate,
        ClosureReason::NotTrafficking,
        ClosureReason::OutOfScope,
        ClosureReason::WithdrawnByPerson,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClosureReason::Resolved => "resolved",
            ClosureReason::ReferredOut => "referred_out",
            ClosureReason::NoFurtherContact => "no_further_contact",
            ClosureReason::Duplicate => "duplicate",
            ClosureReason::NotTrafficking => "not_trafficking",
            ClosureReason::OutOfScope => "out_of_scope",
            ClosureReason::WithdrawnByPerson => "withdrawn_by_person",
        }
    }

    /// From the stored or requested name.
    pub fn parse(raw: &str) -> Option<ClosureReason> {
        ClosureReason::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// What is asked: a new status, with a closure reason when closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub to: Status,
    pub reason: Option<ClosureReason>,
}

/// Who asks, as far as the workflow cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker {
    pub supervisor: bool,
}

/// What happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The case takes the status (with the reason when closed).
    Become(Status, Option<ClosureReason>),
    /// A child case's close by someone who is not a supervisor: the case waits for a supervisor's decision.
    RequestClosure(ClosureReason),
}

/// Why a change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not from this status (or not by this asker): `allowed` are the statuses they may ask for.
    Impossible { allowed: Vec<Status> },
    /// Closing needs a reason.
    ReasonNeeded,
    /// Only closing takes a reason.
    ReasonNotExpected,
}

/// The statuses `asker` may ask for from `from`.
pub fn allowed(from: Status, asker: Asker) -> Vec<Status> {
    use Status::*;
    match from {
        Open => vec![InProgress, Waiting, Closed],
        InProgress => vec![Waiting, Closed],
        Waiting => vec![InProgress, Closed],
        Referred => vec![InProgress, Waiting, Closed],
        ClosureRequested if asker.supervisor => vec![InProgress, Closed],
        ClosureRequested => vec![],
        Closed => vec![InProgress],
    }
}

/// Decides a change of a case's status. `child` is the case's child flag.
pub fn decide(from: Status, change: Change, child: bool, asker: Asker) -> Result<Step, Refusal> {
    if !allowed(from, asker).contains(&change.to) {
        return Err(Refusal::Impossible {
            allowed: allowed(from, asker),
        });
    }
    match (change.to, change.reason) {
        (Status::Closed, None) => Err(Refusal::ReasonNeeded),
        (Status::Closed, Some(reason)) if child && !asker.supervisor => Ok(Step::RequestClosure(reason)),
        (Status::Closed, Some(reason)) => Ok(Step::Become(Status::Closed, Some(reason))),
        (_, Some(_)) => Err(Refusal::ReasonNotExpected),
        (to, None) => Ok(Step::Become(to, None)),
    }
}

/// A supervisor's decision on a closure request: approved closes with the requested reason, rejected goes
/// back to `in_progress`. `None` when the case has no closure request.
pub fn decide_closure(from: Status, approve: bool) -> Option<Status> {
    (from == Status::ClosureRequested).then_some(if approve {
        Status::Closed
    } else {
        Status::InProgress
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPERVISOR: Asker = Asker { supervisor: true };
    const STAFF: Asker = Asker { supervisor: false };

    /// The whole table, written out once more by hand: (from, to) pairs a non-supervisor may ask for.
    const STAFF_EDGES: [(Status, Status); 10] = [
        (Status::Open, Status::InProgress),
        (Status::Open, Status::Waiting),
        (Status::Open, Status::Closed),
        (Status::InProgress, Status::Waiting),
        (Status::InProgress, Status::Closed),
        (Status::Waiting, Status::InProgress),
        (Status::Waiting, Status::Closed),
        (Status::Referred, Status::InProgress),
        (Status::Referred, Status::Waiting),
        (Status::Referred, Status::Closed),
    ];

    fn edge_allowed(from: Status, to: Status, asker: Asker) -> bool {
        STAFF_EDGES.contains(&(from, to))
            || (from, to) == (Status::Closed, Status::InProgress)
            || (asker.supervisor
                && from == Status::ClosureRequested
                && matches!(to, Status::InProgress | Status::Closed))
    }

    fn reasons() -> Vec<Option<ClosureReason>> {
        std::iter::once(None)
            .chain(ClosureReason::ALL.into_iter().map(Some))
            .collect()
    }

    #[test]
    fn every_change_from_every_status_by_everyone_is_decided_as_the_table_says() {
        for from in Status::ALL {
            for to in Status::ALL {
                for reason in reasons() {
                    for child in [false, true] {
                        for asker in [SUPERVISOR, STAFF] {
                            let got = decide(from, Change { to, reason }, child, asker);
                            let expected = if !edge_allowed(from, to, asker) {
                                Err(Refusal::Impossible {
                                    allowed: allowed(from, asker),
                                })
                            } else if to == Status::Closed {
                                match reason {
                                    None => Err(Refusal::ReasonNeeded),
                                    Some(r) if child && !asker.supervisor => Ok(Step::RequestClosure(r)),
                                    Some(r) => Ok(Step::Become(Status::Closed, Some(r))),
                                }
                            } else if reason.is_some() {
                                Err(Refusal::ReasonNotExpected)
                            } else {
                                Ok(Step::Become(to, None))
                            };
                            assert_eq!(
                                got, expected,
                                "{from:?} -> {to:?} {reason:?} child={child} {asker:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn allowed_lists_exactly_the_edges() {
        for from in Status::ALL {
            for asker in [SUPERVISOR, STAFF] {
                let listed = allowed(from, asker);
                for to in Status::ALL {
                    assert_eq!(
                        listed.contains(&to),
                        edge_allowed(from, to, asker),
                        "{from:?} -> {to:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn nothing_ever_moves_to_referred_or_open_and_a_case_never_stays_put() {
        for from in Status::ALL {
            for asker in [SUPERVISOR, STAFF] {
                let listed = allowed(from, asker);
                assert!(!listed.contains(&Status::Referred) && !listed.contains(&Status::Open));
                assert!(!listed.contains(&from), "{from:?}");
            }
        }
    }

    #[test]
    fn a_closure_request_is_decided_only_when_there_is_one() {
        for from in Status::ALL {
            for approve in [true, false] {
                let got = decide_closure(from, approve);
                if from == Status::ClosureRequested {
                    assert_eq!(
                        got,
                        Some(if approve {
                            Status::Closed
                        } else {
                            Status::InProgress
                        })
                    );
                } else {
                    assert_eq!(got, None);
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        for reason in ClosureReason::ALL {
            assert_eq!(ClosureReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(Status::parse("pending"), None);
    }
}
