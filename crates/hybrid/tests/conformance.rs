//! The whole suite through the hybrid store: healthy, with the primary
//! dead, and with the primary frozen — the answers never change.

mod common;

use std::time::Duration;

use sqdata_testkit::Fixture;
use sqdata_testkit::chaos::Fault;

fn fixture(fault: Fault) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let ttl = Duration::from_millis(800);
    let (h, chaos, _) = common::hybrid(dir.path(), ttl);
    chaos.switch.set(fault);
    let mut fx = Fixture::all(h, ttl);
    fx.guard = Some(Box::new((dir, chaos)));
    fx
}

mod healthy {
    use super::*;
    async fn fx() -> Fixture {
        fixture(Fault::None)
    }
    sqdata_testkit::conformance!(fx; positions, quotes, deals, assets, bars);
}

mod primary_down {
    use super::*;
    async fn fx() -> Fixture {
        fixture(Fault::Fail)
    }
    sqdata_testkit::conformance!(fx; positions, quotes, deals, assets, bars);
}

mod primary_frozen {
    use super::*;
    async fn fx() -> Fixture {
        fixture(Fault::Hang)
    }
    sqdata_testkit::conformance!(fx; positions, deals);
}
