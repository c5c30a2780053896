//! Registry conformance: accounts, strategies, versioned parameters, audit.

use std::sync::Arc;

use sqdata_core::registry::{MAX_DOCUMENT_BYTES, account_entity, book_entity};
use sqdata_core::serde_json::{Map, Value, json};
use sqdata_core::{Account, AuditQuery, BookId, Error, RegistryDump, RegistryStore, Strategy};

use crate::{Fixture, fresh_book, sibling_book};

fn store(fx: &Fixture) -> Arc<dyn RegistryStore> {
    fx.registry.clone().expect("the fixture provides no registry store")
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

fn account(b: &BookId) -> Account {
    Account {
        id: b.account.clone(),
        name: "实盘账户 QMT".into(),
        broker: "qmt".into(),
        meta: obj(json!({"cash_reserve": 10_000.5, "tags": ["主板", "sz"]})),
    }
}

fn strategy(b: &BookId) -> Strategy {
    Strategy { book: b.clone(), description: "尾盘选股".into(), kind: "wencai".into(), enabled: true }
}

async fn setup(s: &dyn RegistryStore) -> BookId {
    let b = fresh_book();
    s.upsert_account(&account(&b), "tester").await.unwrap();
    s.upsert_strategy(&strategy(&b), "tester").await.unwrap();
    b
}

fn field(e: &Error) -> &str {
    match e {
        Error::InvalidInput { field, .. } => field,
        other => panic!("expected invalid input, got {other}"),
    }
}

/// Accounts round-trip with unicode and nested meta; an upsert replaces.
pub async fn accounts_roundtrip_and_replace(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    assert_eq!(s.account(&b.account).await.unwrap(), None, "not found is None");
    let mut a = account(&b);
    s.upsert_account(&a, "alice").await.unwrap();
    assert_eq!(s.account(&b.account).await.unwrap(), Some(a.clone()));
    a.name = "renamed".into();
    a.meta.insert("risk".into(), json!({"max_pos": 20}));
    s.upsert_account(&a, "alice").await.unwrap();
    assert_eq!(s.account(&b.account).await.unwrap(), Some(a.clone()));
    assert_eq!(s.accounts().await.unwrap().iter().filter(|x| x.id == b.account).count(), 1);
    // ids are case-sensitive, as in the files
    let upper = BookId::new(b.account.as_str().to_uppercase(), "x").unwrap();
    assert_eq!(s.account(&upper.account).await.unwrap(), None);
    assert!(s.delete_account(&b.account, "alice").await.unwrap());
    assert!(!s.delete_account(&b.account, "alice").await.unwrap(), "a second delete finds nothing");
    assert_eq!(s.account(&b.account).await.unwrap(), None);
}

/// A strategy needs its account; an account with strategies is not deleted.
pub async fn strategies_belong_to_accounts(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let e = s.upsert_strategy(&strategy(&b), "bob").await.unwrap_err();
    assert_eq!(field(&e), "account", "{e}");
    s.upsert_account(&account(&b), "bob").await.unwrap();
    s.upsert_strategy(&strategy(&b), "bob").await.unwrap();
    let sib = sibling_book(&b);
    s.upsert_strategy(&Strategy { enabled: false, ..strategy(&sib) }, "bob").await.unwrap();
    let list = s.strategies(Some(&b.account)).await.unwrap();
    assert_eq!(list.iter().map(|x| x.book.clone()).collect::<Vec<_>>(), vec![b.clone(), sib.clone()]);
    assert!(!list[1].enabled);
    assert_eq!(list[0].kind, "wencai");
    let e = s.upsert_strategy(&Strategy { kind: "k".repeat(65), ..strategy(&b) }, "bob").await.unwrap_err();
    assert_eq!(field(&e), "kind", "{e}");
    assert_eq!(s.strategy(&b).await.unwrap(), Some(strategy(&b)));
    let e = s.delete_account(&b.account, "bob").await.unwrap_err();
    assert_eq!(field(&e), "account", "{e}");
    assert!(s.account(&b.account).await.unwrap().is_some(), "nothing deleted");
    assert!(s.delete_strategy(&b, "bob").await.unwrap());
    assert!(s.delete_strategy(&sib, "bob").await.unwrap());
    assert!(s.strategies(Some(&b.account)).await.unwrap().is_empty());
    assert!(s.delete_account(&b.account, "bob").await.unwrap());
}

/// Versions count from 1; old versions stay readable; a rollback is a new
/// version with the old parameters.
pub async fn params_are_versioned_and_rolled_back(fx: &Fixture) {
    let s = store(fx);
    let b = setup(&*s).await;
    assert_eq!(s.params(&b, None).await.unwrap(), None);
    let p1 = obj(json!({"stop_loss": 0.05, "trail": {"from": 1.1, "back": 0.02}, "名称": "v1"}));
    let p2 = obj(json!({"stop_loss": 0.04}));
    let v1 = s.put_params(&b, &p1, "carol", "first").await.unwrap();
    let v2 = s.put_params(&b, &p2, "carol", "tighter").await.unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(s.params(&b, None).await.unwrap().unwrap().params, p2);
    let old = s.params(&b, Some(1)).await.unwrap().unwrap();
    assert_eq!((old.params, old.actor.as_str(), old.note.as_str()), (p1.clone(), "carol", "first"));
    assert_eq!(s.params(&b, Some(9)).await.unwrap(), None);
    let v3 = s.rollback_params(&b, 1, "dave").await.unwrap();
    assert_eq!((v3.version, &v3.params), (3, &p1));
    let hist = s.param_history(&b).await.unwrap();
    assert_eq!(hist.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(hist[2].actor, "dave");
    assert!(hist.windows(2).all(|w| w[0].created_at <= w[1].created_at));
    // another book has its own numbering
    let sib = sibling_book(&b);
    s.upsert_strategy(&strategy(&sib), "carol").await.unwrap();
    assert_eq!(s.put_params(&sib, &p2, "carol", "").await.unwrap().version, 1);
    // deleting the strategy deletes its parameters
    assert!(s.delete_strategy(&b, "carol").await.unwrap());
    assert!(s.param_history(&b).await.unwrap().is_empty());
    assert_eq!(s.param_history(&sib).await.unwrap().len(), 1);
}

/// Eight writers at once get distinct, consecutive versions.
pub async fn concurrent_param_writers_get_distinct_versions(fx: &Fixture) {
    let s = store(fx);
    let b = setup(&*s).await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (s, b) = (s.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..5 {
                let p = obj(json!({"writer": w, "i": i}));
                got.push(s.put_params(&b, &p, "writer", "").await.unwrap().version);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u32>>());
    let hist = s.param_history(&b).await.unwrap();
    assert_eq!(hist.len(), 40);
}

/// A conditional put stores only over the expected version: of 8
/// concurrent editors of version 1, exactly one wins, the others get a
/// conflict and store nothing.
pub async fn conditional_param_writes_cannot_lose_updates(fx: &Fixture) {
    let s = store(fx);
    let b = setup(&*s).await;
    let first = s.put_params_if(&b, &obj(json!({"v": 0})), "writer", "", 0).await.unwrap();
    assert_eq!(first.version, 1);
    let e = s.put_params_if(&b, &obj(json!({"v": 9})), "writer", "", 0).await.unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (s, b) = (s.clone(), b.clone());
        tasks.push(tokio::spawn(async move { s.put_params_if(&b, &obj(json!({"writer": w})), "writer", "", 1).await }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(v) => {
                won += 1;
                assert_eq!(v.version, 2);
            }
            Err(Error::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(s.param_history(&b).await.unwrap().len(), 2);
}

/// Bad input names its field and changes nothing.
pub async fn bad_input_is_rejected_without_change(fx: &Fixture) {
    let s = store(fx);
    let b = setup(&*s).await;
    let p = obj(json!({"k": 1}));
    s.put_params(&b, &p, "erin", "ok").await.unwrap();
    let before = s.audit(&AuditQuery { entity: Some(book_entity(&b)), ..Default::default() }).await.unwrap();

    assert_eq!(field(&s.put_params(&b, &p, "", "x").await.unwrap_err()), "actor");
    assert_eq!(field(&s.put_params(&b, &p, "bad\u{7}actor", "x").await.unwrap_err()), "actor");
    let huge = obj(json!({"blob": "x".repeat(MAX_DOCUMENT_BYTES)}));
    assert_eq!(field(&s.put_params(&b, &huge, "erin", "x").await.unwrap_err()), "params");
    assert_eq!(field(&s.put_params(&b, &p, "erin", &"n".repeat(5000)).await.unwrap_err()), "note");
    assert_eq!(field(&s.rollback_params(&b, 7, "erin").await.unwrap_err()), "version");
    let ghost = sibling_book(&b);
    assert_eq!(field(&s.put_params(&ghost, &p, "erin", "x").await.unwrap_err()), "book");
    let mut a = account(&b);
    a.name = "n".repeat(500);
    assert_eq!(field(&s.upsert_account(&a, "erin").await.unwrap_err()), "name");
    assert_eq!(field(&s.audit(&AuditQuery { limit: 0, ..Default::default() }).await.unwrap_err()), "limit");
    assert_eq!(field(&s.audit(&AuditQuery { limit: 1_000_000, ..Default::default() }).await.unwrap_err()), "limit");

    assert_eq!(s.param_history(&b).await.unwrap().len(), 1, "no version was added");
    assert_eq!(s.account(&b.account).await.unwrap(), Some(account(&b)), "the account is unchanged");
    let after = s.audit(&AuditQuery { entity: Some(book_entity(&b)), ..Default::default() }).await.unwrap();
    assert_eq!(before, after, "nothing was audited");
}

/// Every change leaves one audit row, newest first, filterable.
pub async fn every_change_is_audited(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    s.upsert_account(&account(&b), "frank").await.unwrap();
    s.upsert_strategy(&strategy(&b), "frank").await.unwrap();
    s.put_params(&b, &obj(json!({"a": 1})), "grace", "one").await.unwrap();
    s.put_params(&b, &obj(json!({"a": 2})), "grace", "two").await.unwrap();
    s.rollback_params(&b, 1, "frank").await.unwrap();
    s.delete_strategy(&b, "frank").await.unwrap();
    s.delete_account(&b.account, "frank").await.unwrap();

    let book_rows = s.audit(&AuditQuery { entity: Some(book_entity(&b)), ..Default::default() }).await.unwrap();
    let actions: Vec<&str> = book_rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["strategy.delete", "params.rollback", "params.put", "params.put", "strategy.upsert"]);
    assert!(book_rows.windows(2).all(|w| w[0].id > w[1].id && w[0].at >= w[1].at), "newest first");
    assert_eq!(book_rows[1].detail["version"], json!(3));
    assert_eq!(book_rows[1].detail["from"], json!(1));
    let acct = s.audit(&AuditQuery { entity: Some(account_entity(&b.account)), ..Default::default() }).await.unwrap();
    assert_eq!(acct.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["account.delete", "account.upsert"]);
    assert_eq!(acct[1].detail["name"], json!("实盘账户 QMT"));
    let by_grace = s
        .audit(&AuditQuery { entity: Some(book_entity(&b)), actor: Some("grace".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(by_grace.len(), 2);
    let limited = s.audit(&AuditQuery { entity: Some(book_entity(&b)), limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(limited, book_rows[..2]);
    let since = book_rows[0].at + chrono::Duration::milliseconds(1);
    let none =
        s.audit(&AuditQuery { entity: Some(book_entity(&b)), since: Some(since), ..Default::default() }).await.unwrap();
    assert!(none.is_empty());
}

/// A dump restores exactly (a backup's registry part); a bad dump changes
/// nothing. The fixture's registry is the test's own: a restore replaces
/// everything in it.
pub async fn dump_and_restore_roundtrip(fx: &Fixture) {
    let s = store(fx);
    let b = setup(&*s).await;
    s.put_params(&b, &obj(json!({"v": 1, "名": "一"})), "henry", "one").await.unwrap();
    s.put_params(&b, &obj(json!({"v": 2})), "henry", "two").await.unwrap();
    let before = s.dump().await.unwrap();
    assert!(before.accounts.iter().any(|a| a.id == b.account));
    assert_eq!(before.params.iter().filter(|p| p.book == b).count(), 2);
    assert!(before.audit.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    // later changes …
    s.put_params(&b, &obj(json!({"v": 3})), "henry", "three").await.unwrap();
    let other = fresh_book();
    s.upsert_account(&account(&other), "henry").await.unwrap();
    // … are undone by the restore
    s.restore_dump(&before, "restorer").await.unwrap();
    let after = s.dump().await.unwrap();
    assert_eq!(
        (&after.accounts, &after.strategies, &after.params),
        (&before.accounts, &before.strategies, &before.params)
    );
    assert_eq!(after.audit[..after.audit.len() - 1], before.audit[..], "the trail as it was");
    let last = after.audit.last().unwrap();
    assert_eq!((last.action.as_str(), last.actor.as_str()), ("registry.restore", "restorer"));
    // versions continue after the restored ones
    assert_eq!(s.put_params(&b, &obj(json!({"v": 4})), "henry", "").await.unwrap().version, 3);

    // a dump whose strategy has no account is refused; nothing changes
    let now = s.dump().await.unwrap();
    let bad = RegistryDump { accounts: Vec::new(), ..now.clone() };
    let e = s.restore_dump(&bad, "restorer").await.unwrap_err();
    assert_eq!(field(&e), "account", "{e}");
    let mut gap = now.clone();
    if let Some(p) = gap.params.last_mut() {
        p.version += 5;
    }
    assert_eq!(field(&s.restore_dump(&gap, "restorer").await.unwrap_err()), "version");
    assert_eq!(s.dump().await.unwrap(), now, "unchanged");
}
