#![doc = include_str!("../README.md")]

use std::sync::Arc;
use std::time::Duration;

use sqdata_core::{AssetStore, AuthStore, BarStore, BookId, Code, DealStore, PositionStore, QuoteStore, RegistryStore};

pub mod assets;
pub mod auth;
pub mod bars;
pub mod chaos;
pub mod deals;
mod memory;
pub mod positions;
pub mod procs;
pub mod quotes;
pub mod registry;

pub use memory::MemoryStore;
pub use sqdata_core::sample::{self, fresh_codes, random_u64};

/// What a backend under test provides. Domains it does not hold are `None`;
/// the macro only generates the domains it is told to.
#[derive(Default)]
pub struct Fixture {
    /// Position store.
    pub positions: Option<Arc<dyn PositionStore>>,
    /// Quote store.
    pub quotes: Option<Arc<dyn QuoteStore>>,
    /// Deal store.
    pub deals: Option<Arc<dyn DealStore>>,
    /// Asset store.
    pub assets: Option<Arc<dyn AssetStore>>,
    /// Bar store.
    pub bars: Option<Arc<dyn BarStore>>,
    /// Accounts, strategies, parameters, audit.
    pub registry: Option<Arc<dyn RegistryStore>>,
    /// Users, grants, keys, sessions, access log (the `auth` cases also read
    /// the audit trail through `registry`, the same store).
    pub auth: Option<Arc<dyn AuthStore>>,
    /// The quote lifetime the backend was configured with (keep it short).
    pub quote_ttl: Duration,
    /// Anything that must live as long as the test (a temp dir, a namespace
    /// that drops its keys).
    pub guard: Option<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").field("quote_ttl", &self.quote_ttl).finish_non_exhaustive()
    }
}

impl Fixture {
    /// Every domain from one store.
    pub fn all<S>(s: Arc<S>, quote_ttl: Duration) -> Fixture
    where
        S: PositionStore + QuoteStore + DealStore + AssetStore + BarStore + 'static,
    {
        Fixture {
            positions: Some(s.clone()),
            quotes: Some(s.clone()),
            deals: Some(s.clone()),
            assets: Some(s.clone()),
            bars: Some(s),
            registry: None,
            auth: None,
            quote_ttl,
            guard: None,
        }
    }
}

/// A test server's address from `SQDATA_TEST_<SERVER>_*` (which `cargo
/// xtask test` sets after starting the servers). A test that cannot reach
/// its server fails loudly, naming the variable: it never skips.
pub fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: this test needs a real server. Run `cargo xtask test`, or \
             `eval $(cargo xtask services up)` and then the tests."
        )
    })
}

/// A fresh book in a fresh account, so tests never see each other's state.
pub fn fresh_book() -> BookId {
    let r = random_u64();
    BookId::new(format!("t{:08x}", r as u32), format!("conf_{:08x}", (r >> 32) as u32)).unwrap()
}

/// A second book in the same account.
pub fn sibling_book(b: &BookId) -> BookId {
    BookId::new(b.account.as_str(), format!("{}_sib", b.book)).unwrap()
}

/// Creates a bucket on the S3 test server with a plain unsigned PUT (moto
/// takes it; `object_store` has no bucket API). Panics, naming the server,
/// when it cannot.
pub fn create_s3_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport)
        .unwrap_or_else(|e| panic!("cannot reach the S3 server at {endpoint} (SQDATA_TEST_S3_URL): {e}"));
    write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .expect("send the bucket request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read the bucket response");
    assert!(resp.starts_with("HTTP/1.1 200"), "creating bucket {bucket}: {resp}");
}

/// Parses a known-good code.
pub fn code(s: &str) -> Code {
    Code::parse(s).unwrap()
}

/// Generates the conformance suite for a backend: one `#[tokio::test]` per
/// case of each listed domain. `$factory` is an `async fn() -> Fixture`.
///
/// ```ignore
/// sqdata_testkit::conformance!(crate_factory; positions, quotes, deals, assets, bars);
/// ```
#[macro_export]
macro_rules! conformance {
    ($factory:path; $($domain:ident),+ $(,)?) => {
        $( $crate::__conformance_domain!($factory, $domain); )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_domain {
    ($f:path, positions) => {
        $crate::__cases!(
            $f,
            positions,
            [
                snapshot_of_unknown_book_is_empty,
                new_held_sets_zero_and_keeps_prices,
                mark_sold_drops_price_keys,
                reconcile_adds_and_drops,
                inc_held_days_is_idempotent_per_day_and_skips_sold,
                update_extremes_rounds_and_only_widens,
                update_extremes_skips_codes_not_held,
                update_extremes_with_eight_concurrent_writers_loses_nothing,
                mixed_concurrent_writers_keep_every_write,
                held_days_batch,
                books_are_isolated,
                bad_input_is_rejected_without_changing_state,
                replace_delete_and_list_books,
                del_held_days_keeps_prices,
                del_held_days_adds_untracked_codes,
                del_held_days_is_idempotent,
                del_held_days_leaves_other_books_alone,
            ]
        );
    };
    ($f:path, quotes) => {
        $crate::__cases!($f, quotes, [put_get_roundtrip, quotes_expire_after_ttl, bad_quotes_are_rejected]);
    };
    ($f:path, deals) => {
        $crate::__cases!(
            $f,
            deals,
            [
                record_and_query_roundtrip_with_unicode,
                same_id_is_recorded_once,
                paging_boundaries,
                date_filter_boundaries,
                code_and_kind_filters,
                account_scope_spans_books_and_isolates_accounts,
                aggregate_by_day_and_month,
                bad_batch_stores_nothing,
                bad_queries_are_rejected,
                delete_book_removes_only_that_book,
                delete_deals_removes_exactly_those,
                replace_deals_changes_the_stored_fields,
                replace_deals_counts_stored_and_adds_new,
                replace_deals_rejects_another_books_deal,
                replace_deals_rejects_duplicate_ids_in_the_batch,
                replace_deals_leaves_other_books_alone,
                replace_deals_updates_aggregates,
            ]
        );
    };
    ($f:path, registry) => {
        $crate::__cases!(
            $f,
            registry,
            [
                accounts_roundtrip_and_replace,
                strategies_belong_to_accounts,
                params_are_versioned_and_rolled_back,
                concurrent_param_writers_get_distinct_versions,
                conditional_param_writes_cannot_lose_updates,
                bad_input_is_rejected_without_change,
                every_change_is_audited,
                dump_and_restore_roundtrip,
            ]
        );
    };
    ($f:path, auth) => {
        $crate::__cases!(
            $f,
            auth,
            [
                users_roundtrip_and_debug_hides_the_hash,
                duplicate_user_is_refused_without_change,
                update_user_moves_tokens_after_and_revokes_sessions,
                login_failed_locks_at_the_threshold_and_success_resets,
                unlock_lifts_a_lockout,
                grants_set_replace_revoke_and_list,
                api_keys_roundtrip_list_and_revoke,
                sessions_create_get_and_revoke,
                refresh_rotates_and_detects_reuse,
                concurrent_refreshes_rotate_once,
                access_log_appends_and_reads_newest_first,
                every_auth_change_is_audited_without_hashes,
                bad_auth_input_is_rejected_without_change,
            ]
        );
    };
    ($f:path, assets) => {
        $crate::__cases!(
            $f,
            assets,
            [
                upsert_replaces_the_same_date,
                range_and_isolation,
                bad_assets_are_rejected,
                batch_upsert_adds_and_replaces,
                bad_row_in_a_batch_stores_nothing,
                delete_assets_counts_what_existed,
                deleting_every_row_empties_the_book,
            ]
        );
    };
    ($f:path, bars) => {
        $crate::__cases!(
            $f,
            bars,
            [
                save_and_load_550_daily_bars,
                saving_again_replaces_the_series,
                upsert_merges_by_time,
                batch_load_keeps_order_and_reports_empty,
                overview_counts,
                delete_range,
                minute_bars_roundtrip,
                bad_series_are_rejected_without_change,
                batch_save_is_all_or_nothing_when_invalid,
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cases {
    ($f:path, $domain:ident, [$($case:ident),+ $(,)?]) => {
        mod $domain {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let fx: $crate::Fixture = $f().await;
                    $crate::$domain::$case(&fx).await;
                    drop(fx);
                }
            )+
        }
    };
}
