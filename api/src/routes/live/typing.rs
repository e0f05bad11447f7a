//! Typing signals: who a client's typing frame goes to, and which signals a connection passes on.

use commands::stream_id;
use domain::session::{Party, Session};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use super::frames::{Frame, InFrame, OutFrame};
use super::outbox::{Closing, Outbox};
use super::visibility::Viewer;
use crate::signals::{Recipient, Signal};
use crate::AppState;

/// Who a typing frame from `viewer` about `session_id` goes to, given the conversation as it
/// is: `Ok(None)` when there is nobody to tell (no operator yet), `Err` when the viewer is not
/// a party of the conversation.
pub fn typing_route(
    viewer: Viewer,
    session_id: Uuid,
    now: &Session,
) -> Result<Option<(Party, Recipient)>, &'static str> {
    match viewer {
        Viewer::Visitor { session_id: mine } if mine == session_id => {
            Ok(now.operator.map(|id| (Party::Visitor, Recipient::Operator { id })))
        }
        Viewer::Visitor { .. } => Err("a visitor may only signal in their own conversation"),
        Viewer::Operator { user_id } | Viewer::Admin { user_id } => {
            if now.exists() && now.operator == Some(user_id) {
                Ok(Some((Party::Operator { id: user_id }, Recipient::Visitor)))
            } else {
                Err("only the operator of a conversation may signal in it")
            }
        }
    }
}

/// Is this signal for `viewer`'s connections?
pub fn receives(viewer: Viewer, signal: &Signal) -> bool {
    match (viewer, signal.to) {
        (Viewer::Visitor { session_id }, Recipient::Visitor) => session_id == signal.session_id,
        (Viewer::Operator { user_id } | Viewer::Admin { user_id }, Recipient::Operator { id }) => user_id == id,
        _ => false,
    }
}

/// Typing signals addressed to this connection.
pub(super) async fn typing_signals(viewer: Viewer, mut signals: broadcast::Receiver<Signal>, out: &Outbox) -> Closing {
    loop {
        match signals.recv().await {
            Ok(s) if receives(viewer, &s) => {
                out.offer(Frame::of(&OutFrame::Typing { session_id: s.session_id, party: s.party, typing: s.typing }))
            }
            Ok(_) => {}
            // Typing is ephemeral: signals missed while behind are simply gone.
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Frames from the client: typing, checked against the conversation as it is now.
pub(super) async fn client_typing(
    state: &AppState,
    viewer: Viewer,
    mut frames: mpsc::Receiver<String>,
    out: &Outbox,
) -> Closing {
    while let Some(text) = frames.recv().await {
        let problem = match serde_json::from_str::<InFrame>(&text) {
            Err(e) => Some(format!(
                "unreadable frame ({e}); expected {{\"type\":\"typing\",\"session_id\":...,\"typing\":true}}"
            )),
            Ok(InFrame::Typing { session_id, typing }) => {
                let now = match viewer {
                    // Another conversation: refused without reading it.
                    Viewer::Visitor { session_id: mine } if mine != session_id => Ok(Session::default()),
                    _ => state
                        .sessions
                        .current(state.events.as_ref(), &stream_id::<Session>(session_id))
                        .await
                        .map(|l| l.state),
                };
                match now {
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot load a conversation for a typing signal");
                        Some("the store is unavailable; try again".to_string())
                    }
                    Ok(now) => match typing_route(viewer, session_id, &now) {
                        Ok(Some((party, to))) => {
                            let signal = Signal { session_id, party, typing, to };
                            crate::signals::send(&state.signals, state.events.as_ref(), signal).await;
                            None
                        }
                        Ok(None) => None,
                        Err(detail) => Some(detail.to_string()),
                    },
                }
            }
        };
        if let Some(detail) = problem {
            out.offer(Frame::error(&detail));
        }
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use domain::aggregate::Aggregate;

    use super::*;
    use crate::routes::live::story::*;

    const fn operator(user_id: Uuid) -> Viewer {
        Viewer::Operator { user_id }
    }

    #[test]
    fn typing_goes_from_one_party_to_the_other() {
        let with_ada = Session::from_history(&Story::begin(Some(ADA)).0);
        let waiting = Session::from_history(&Story::begin(None).0);
        let nothing = Session::default();
        let visitor = Viewer::Visitor { session_id: S1 };
        type Route = Result<Option<(Party, Recipient)>, ()>;
        #[rustfmt::skip]
        let table: Vec<(&str, Viewer, Uuid, &Session, Route)> = vec![
            ("the visitor, to the operator", visitor, S1, &with_ada, Ok(Some((Party::Visitor, Recipient::Operator { id: ADA })))),
            ("the visitor while waiting: nobody to tell", visitor, S1, &waiting, Ok(None)),
            ("a visitor in another conversation", Viewer::Visitor { session_id: S2 }, S1, &with_ada, Err(())),
            ("the operator, to the visitor", operator(ADA), S1, &with_ada, Ok(Some((op(ADA), Recipient::Visitor)))),
            ("another operator", operator(BOB), S1, &with_ada, Err(())),
            ("an admin who is not its operator", Viewer::Admin { user_id: BOSS }, S1, &with_ada, Err(())),
            ("an operator, in a conversation that does not exist", operator(ADA), S1, &nothing, Err(())),
        ];
        for (name, viewer, session, now, expected) in table {
            assert_eq!(typing_route(viewer, session, now).map_err(|_| ()), expected, "{name}");
        }

        let to_ada =
            Signal { session_id: S1, party: Party::Visitor, typing: true, to: Recipient::Operator { id: ADA } };
        let to_visitor = Signal { session_id: S1, party: op(ADA), typing: true, to: Recipient::Visitor };
        assert!(receives(operator(ADA), &to_ada));
        assert!(receives(Viewer::Admin { user_id: ADA }, &to_ada), "an admin handling conversations gets theirs");
        assert!(!receives(operator(BOB), &to_ada));
        assert!(!receives(visitor, &to_ada), "never back to the sender's side");
        assert!(receives(visitor, &to_visitor));
        assert!(!receives(Viewer::Visitor { session_id: S2 }, &to_visitor));
        assert!(!receives(operator(ADA), &to_visitor));
    }
}
