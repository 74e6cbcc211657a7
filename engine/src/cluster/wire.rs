//! What nodes send each other over NATS ([`super`]), as JSON: the primary's broadcasts
//! (record changes and schema/settings changes, in commit order on one subject) and the
//! requests one node routes to the node holding a realtime client.
//!
//! A record's values travel by field name, so a replica puts them in its own snapshot's
//! field order; a value it does not know becomes NULL. An auth record's password hash and
//! token key never travel: no event shows them, and whoever reads the NATS subjects must not
//! be able to sign tokens.

use crate::error::ApiError;
use crate::records::event::{Action, RecordEvent};
use crate::records::SqlVal;
use pocketbun_storage::collections::fields::{FIELD_PASSWORD, FIELD_TOKEN_KEY};
use pocketbun_storage::collections::Collection;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// A message of the primary on `<prefix>.events`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Broadcast {
    /// A committed record create/update/delete, held by Litestream transaction `txid`.
    Record {
        txid: u64,
        action: String,
        /// The collection's id.
        collection: String,
        /// Field name -> stored value (text, number or null).
        values: Map<String, Json>,
        /// Fields left out of `values` because the message would pass NATS's payload limit:
        /// the replica reads them from its own copy of the row.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reload: Vec<String>,
    },
    /// Collections or settings changed in transaction `txid`: reload the snapshots.
    Schema { txid: u64 },
}

impl Broadcast {
    pub fn txid(&self) -> u64 {
        match self {
            Broadcast::Record { txid, .. } | Broadcast::Schema { txid } => *txid,
        }
    }

    /// The message of `event`; text values longer than `big` bytes are left out (listed in
    /// `reload`) when `big` is given.
    pub fn record(event: &RecordEvent, txid: u64, big: Option<usize>) -> Broadcast {
        let mut values = Map::new();
        let mut reload = Vec::new();
        let auth = event.collection.is_auth();
        for (field, value) in event.collection.fields.iter().zip(&event.values) {
            if auth && (field.name == FIELD_PASSWORD || field.name == FIELD_TOKEN_KEY) {
                continue;
            }
            let json = match value {
                SqlVal::Null => Json::Null,
                SqlVal::Int(i) => Json::from(*i),
                SqlVal::Real(f) => {
                    serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
                }
                SqlVal::Text(t) if big.is_some_and(|b| t.len() > b) => {
                    reload.push(field.name.clone());
                    continue;
                }
                SqlVal::Text(t) => Json::String(t.to_string()),
            };
            values.insert(field.name.clone(), json);
        }
        Broadcast::Record {
            txid,
            action: event.action.as_str().to_string(),
            collection: event.collection.id.clone(),
            values,
            reload,
        }
    }
}

pub fn action_of(name: &str) -> Option<Action> {
    match name {
        "create" => Some(Action::Create),
        "update" => Some(Action::Update),
        "delete" => Some(Action::Delete),
        _ => None,
    }
}

/// The event a replica delivers: `values` in `collection`'s field order (its own snapshot),
/// `stored` the row of its copy for the fields the message left out.
pub fn event_of(
    collection: Arc<Collection>,
    action: Action,
    values: &Map<String, Json>,
    stored: Option<&RecordEvent>,
) -> RecordEvent {
    let values = collection
        .fields
        .iter()
        .enumerate()
        .map(|(i, field)| match values.get(&field.name) {
            Some(Json::String(s)) => SqlVal::Text(s.as_str().into()),
            Some(Json::Number(n)) => match n.as_i64() {
                Some(i) => SqlVal::Int(i),
                None => SqlVal::Real(n.as_f64().unwrap_or(0.0)),
            },
            Some(_) => SqlVal::Null,
            None => stored
                .and_then(|s| s.values.get(i).cloned())
                .unwrap_or(SqlVal::Null),
        })
        .collect();
    RecordEvent {
        action,
        collection,
        values,
        from_values: true,
    }
}

/// A request for the node holding realtime client `client_id`, on `<prefix>.node.<tag>`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NodeRequest {
    /// `POST /api/realtime`: set the client's subscriptions; `authorization` is the caller's
    /// header, resolved by the node holding the client.
    Subscribe {
        client_id: String,
        ip: String,
        authorization: Option<String>,
        subscriptions: Vec<String>,
    },
    /// `/api/oauth2-redirect`: one message for one subscription of the client.
    Direct {
        client_id: String,
        ip: String,
        subscription: String,
        data: String,
    },
}

/// The answer to a [`NodeRequest`]: `status` 204 (subscribed), 200 (message handed over) or
/// an error's status with its envelope's message and data; 404 when the node does not hold
/// the client (any more).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeReply {
    pub status: u16,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: Map<String, Json>,
}

impl NodeReply {
    pub fn ok(status: u16) -> NodeReply {
        NodeReply {
            status,
            message: String::new(),
            data: Map::new(),
        }
    }

    pub fn error(e: ApiError) -> NodeReply {
        NodeReply {
            status: e.status,
            message: e.message,
            data: e.data,
        }
    }

    /// The error this reply stands for, if it is one.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.status < 300 {
            return Ok(());
        }
        let mut e = ApiError::new(self.status, &self.message);
        e.data = self.data;
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pocketbun_storage::collections::{CollectionType, Field, FieldKind};

    fn notes() -> Arc<Collection> {
        let mut c = Collection::new(CollectionType::Base, "notes", None);
        c.fields
            .push(Field::new("title", FieldKind::zero("text").unwrap()));
        c.fields
            .push(Field::new("n", FieldKind::zero("number").unwrap()));
        Arc::new(c)
    }

    #[test]
    fn a_record_travels_by_field_name() {
        let c = notes();
        let mut values = vec![SqlVal::Text("abc".into()); c.fields.len()];
        let title = c.fields.iter().position(|f| f.name == "title").unwrap();
        let n = c.fields.iter().position(|f| f.name == "n").unwrap();
        values[title] = SqlVal::Text("x".repeat(100).into());
        values[n] = SqlVal::Real(2.5);
        let ev = RecordEvent {
            action: Action::Update,
            collection: c.clone(),
            values,
            from_values: false,
        };
        let msg = Broadcast::record(&ev, 7, None);
        let text = serde_json::to_string(&msg).unwrap();
        let back: Broadcast = serde_json::from_str(&text).unwrap();
        assert_eq!(back, msg);
        let Broadcast::Record {
            txid,
            action,
            values,
            reload,
            ..
        } = back
        else {
            panic!("{text}")
        };
        assert_eq!((txid, action.as_str(), reload.len()), (7, "update", 0));
        let again = event_of(c.clone(), Action::Update, &values, None);
        assert_eq!(again.values, ev.values);

        // a value over the limit is left out and read back from the stored row
        let Broadcast::Record { values, reload, .. } = Broadcast::record(&ev, 7, Some(50)) else {
            unreachable!()
        };
        assert_eq!(reload, vec!["title".to_string()]);
        assert!(!values.contains_key("title"));
        let stored = event_of(c.clone(), Action::Update, &Map::new(), Some(&ev));
        assert_eq!(stored.values, ev.values);
        let filled = event_of(c, Action::Update, &values, Some(&ev));
        assert_eq!(filled.values, ev.values);
    }

    #[test]
    fn secrets_of_auth_records_stay_home() {
        let users = Arc::new(Collection::new(CollectionType::Auth, "users", None));
        let values: Vec<SqlVal> = (users.fields.iter())
            .map(|f| SqlVal::Text(format!("v-{}", f.name).into()))
            .collect();
        let ev = RecordEvent {
            action: Action::Create,
            collection: users.clone(),
            values,
            from_values: false,
        };
        let text = serde_json::to_string(&Broadcast::record(&ev, 1, None)).unwrap();
        assert!(text.contains("v-email"), "{text}");
        assert!(
            !text.contains("v-password") && !text.contains("v-tokenKey"),
            "{text}"
        );
    }

    #[test]
    fn integers_stay_integers() {
        let c = notes();
        let n = c.fields.iter().position(|f| f.name == "n").unwrap();
        let mut values = vec![SqlVal::Null; c.fields.len()];
        values[n] = SqlVal::Int(3);
        let ev = RecordEvent {
            action: Action::Create,
            collection: c.clone(),
            values,
            from_values: false,
        };
        let text = serde_json::to_string(&Broadcast::record(&ev, 1, None)).unwrap();
        let Broadcast::Record { values, .. } = serde_json::from_str(&text).unwrap() else {
            unreachable!()
        };
        assert_eq!(event_of(c, Action::Create, &values, None).values, ev.values);
    }

    #[test]
    fn replies_carry_the_envelope() {
        let mut e = ApiError::forbidden(Some("no"));
        e.data.insert("x".into(), Json::from(1));
        let text = serde_json::to_string(&NodeReply::error(e)).unwrap();
        let back: NodeReply = serde_json::from_str(&text).unwrap();
        let err = back.into_result().unwrap_err();
        assert_eq!((err.status, err.message.as_str()), (403, "no"));
        assert_eq!(err.data["x"], 1);
        assert!(NodeReply::ok(204).into_result().is_ok());
    }
}
