//! The synthetic universe and its prices: generated from the seed, moved by a seeded
//! random walk, so that two runs with one seed see the same market tick for tick.

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;

/// Separate streams for the universe and the price walk, so that the universe of a seed
/// stays the same however long the market has been running.
const UNIVERSE_SALT: u64 = 0x5eed_0001;
const WALK_SALT: u64 = 0x5eed_0002;
/// Quotes are a pure function of the seed, the symbol, the price and the clock, so that
/// asking twice (REST and stream) at one tick gives one answer, and quoting draws nothing
/// from the walk's generator.
const QUOTE_SALT: u64 = 0x5eed_0003;

/// Shares per lot offered on each side: between 1 and this many lots.
const MAX_QUOTE_LOTS: u64 = 50;

/// Per-tick volatility of the walk (fraction of the price, roughly one standard deviation).
const TICK_VOLATILITY: f64 = 0.0015;

#[derive(Clone, Debug)]
pub(crate) struct Instrument {
    pub symbol: String,
    pub name: String,
    pub tradable: bool,
    pub tick_size: Decimal,
    pub lot_size: u32,
    pub price: Decimal,
    /// Anchors a weak mean reversion, so long runs do not drift to absurd prices. A price
    /// set through `/sim/prices` becomes the new anchor: the market stays where a test put it.
    pub anchor: Decimal,
    /// The price at the last simulated close (the initial price before the first):
    /// what "today's" change is measured from.
    pub last_close: Decimal,
}

impl Instrument {
    pub(crate) fn on_tick_grid(&self, price: Decimal) -> bool {
        (price % self.tick_size).is_zero()
    }

    /// Renders a price with the instrument's precision ("12.50", "0.1234").
    pub(crate) fn scaled(&self, price: Decimal) -> Decimal {
        let mut p = price;
        p.rescale(self.tick_size.scale().max(price.normalize().scale()));
        p
    }
}

pub(crate) struct Market {
    /// Sorted by symbol: the instruments list is served in this order.
    pub instruments: Vec<Instrument>,
    index: HashMap<String, usize>,
    rng: ChaCha8Rng,
    seed: u64,
}

/// The top of the book around an instrument's price: the price is the last trade, bid and
/// ask sit one or two ticks either side of it (never below one tick), sizes are whole lots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Quote {
    pub bid: Decimal,
    pub bid_size: Decimal,
    pub ask: Decimal,
    pub ask_size: Decimal,
    pub last: Decimal,
}

const PREFIXES: &[&str] = &[
    "Northern",
    "Pacific",
    "Atlas",
    "Summit",
    "Blue",
    "Granite",
    "Silver",
    "Harbor",
    "Vertex",
    "Crescent",
    "Pioneer",
    "Evergreen",
    "Quantum",
    "Golden",
    "Iron",
    "Liberty",
    "Apex",
    "Cobalt",
    "Meridian",
    "Orion",
    "Redwood",
    "Sterling",
    "Titan",
    "United",
    "Western",
    "Eastern",
];
const CORES: &[&str] = &[
    "Robotics",
    "Energy",
    "Biotech",
    "Semiconductor",
    "Logistics",
    "Foods",
    "Pharma",
    "Mining",
    "Software",
    "Networks",
    "Airlines",
    "Retail",
    "Financial",
    "Insurance",
    "Motors",
    "Media",
    "Materials",
    "Utilities",
    "Health",
    "Gaming",
    "Realty",
    "Chemicals",
    "Water",
    "Aerospace",
];
const SUFFIXES: &[&str] = &[
    "Inc.",
    "Corp.",
    "Holdings",
    "Group",
    "Ltd.",
    "Co.",
    "Technologies",
];

impl Market {
    pub(crate) fn generate(seed: u64, count: usize) -> Market {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ UNIVERSE_SALT);
        let mut seen = HashSet::with_capacity(count);
        let mut instruments = Vec::with_capacity(count);
        while instruments.len() < count {
            let len = match rng.gen_range(0..100) {
                0..=4 => 2,
                5..=39 => 3,
                40..=84 => 4,
                _ => 5,
            };
            let mut symbol: String = (0..len)
                .map(|_| char::from(b'A' + rng.gen_range(0..26u8)))
                .collect();
            let class = rng
                .gen_bool(0.03)
                .then(|| if rng.gen_bool(0.5) { "A" } else { "B" });
            if let Some(class) = class {
                symbol = format!("{symbol}.{class}");
            }
            if !seen.insert(symbol.clone()) {
                continue;
            }
            let mut name = format!(
                "{} {} {}",
                PREFIXES[rng.gen_range(0..PREFIXES.len())],
                CORES[rng.gen_range(0..CORES.len())],
                SUFFIXES[rng.gen_range(0..SUFFIXES.len())]
            );
            if let Some(class) = class {
                name.push_str(&format!(" Class {class}"));
            }
            let raw_price = (rng.gen_range(0.5f64.ln()..800f64.ln())).exp();
            let tick_size = if raw_price < 1.0 {
                Decimal::new(1, 4)
            } else if raw_price > 5.0 && rng.gen_bool(0.1) {
                Decimal::new(5, 2)
            } else {
                Decimal::new(1, 2)
            };
            let lot_size = match rng.gen_range(0..100) {
                0..=79 => 1,
                80..=94 => 10,
                _ => 100,
            };
            let tradable = !rng.gen_bool(0.05);
            let price = round_to_tick(raw_price, tick_size);
            instruments.push(Instrument {
                symbol,
                name,
                tradable,
                tick_size,
                lot_size,
                price,
                anchor: price,
                last_close: price,
            });
        }
        instruments.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        let index = instruments
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.symbol.clone(), i))
            .collect();
        Market {
            instruments,
            index,
            rng: ChaCha8Rng::seed_from_u64(seed ^ WALK_SALT),
            seed,
        }
    }

    /// The quote of `symbol` at market tick `tick`. Deterministic for a seed: the same
    /// tick and price always give the same spread and sizes.
    pub(crate) fn quote(&self, symbol: &str, tick: u64) -> Option<Quote> {
        let inst = self.get(symbol)?;
        let mut h = mix(self.seed ^ QUOTE_SALT ^ tick.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for b in symbol.bytes().chain(inst.price.mantissa().to_le_bytes()) {
            h = mix(h ^ u64::from(b));
        }
        let ticks = |bits: u64| Decimal::from(1 + (bits & 1));
        let lots =
            |bits: u64| Decimal::from(1 + bits % MAX_QUOTE_LOTS) * Decimal::from(inst.lot_size);
        let bid = (inst.price - inst.tick_size * ticks(h)).max(inst.tick_size);
        let ask = inst.price + inst.tick_size * ticks(h >> 1);
        Some(Quote {
            bid: inst.scaled(bid),
            bid_size: lots(h >> 8),
            ask: inst.scaled(ask),
            ask_size: lots(h >> 24),
            last: inst.price,
        })
    }

    pub(crate) fn get(&self, symbol: &str) -> Option<&Instrument> {
        self.index.get(symbol).map(|&i| &self.instruments[i])
    }

    pub(crate) fn price(&self, symbol: &str) -> Option<Decimal> {
        self.get(symbol).map(|i| i.price)
    }

    pub(crate) fn set_price(&mut self, symbol: &str, price: Decimal) -> Option<&Instrument> {
        let i = *self.index.get(symbol)?;
        let inst = &mut self.instruments[i];
        inst.price = inst.scaled(price);
        inst.anchor = inst.price;
        Some(inst)
    }

    /// The session ends: every current price becomes the last close.
    pub(crate) fn mark_close(&mut self) {
        for inst in &mut self.instruments {
            inst.last_close = inst.price;
        }
    }

    /// One step of the random walk for every instrument.
    pub(crate) fn step(&mut self) {
        for inst in &mut self.instruments {
            let z = self.rng.gen_range(-1.0f64..1.0) + self.rng.gen_range(-1.0f64..1.0);
            let price = inst.price.to_f64().unwrap_or(1.0);
            let anchor = inst.anchor.to_f64().unwrap_or(price);
            let drift = 0.0005 * (anchor / price).ln();
            let target = price * (1.0 + z * TICK_VOLATILITY + drift);
            let tick = inst.tick_size.to_f64().unwrap_or(0.01);
            let ticks = ((target - price) / tick).round() as i64;
            let next = inst.price + inst.tick_size * Decimal::from(ticks);
            inst.price = inst.scaled(next.max(inst.tick_size));
        }
    }
}

/// splitmix64's finalizer: a cheap, well-spread hash step.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn round_to_tick(price: f64, tick: Decimal) -> Decimal {
    let p = Decimal::from_f64(price).unwrap_or(Decimal::ONE);
    let ticks = (p / tick).round();
    let mut out = (ticks * tick).max(tick);
    out.rescale(tick.scale());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn universe_is_deterministic_unique_and_on_grid() {
        let a = Market::generate(7, 3000);
        let b = Market::generate(7, 3000);
        let syms: HashSet<_> = a.instruments.iter().map(|i| &i.symbol).collect();
        assert_eq!(syms.len(), 3000);
        for (x, y) in a.instruments.iter().zip(&b.instruments) {
            assert_eq!((&x.symbol, x.price), (&y.symbol, y.price));
            assert!(x.on_tick_grid(x.price), "{} {}", x.symbol, x.price);
        }
    }

    #[test]
    fn quotes_straddle_the_price_on_the_grids_and_repeat_for_a_seed() {
        let mut a = Market::generate(3, 300);
        let b = Market::generate(3, 300);
        a.set_price(&a.instruments[0].symbol.clone(), a.instruments[0].tick_size);
        for (i, inst) in a.instruments.iter().enumerate() {
            let q = a.quote(&inst.symbol, 9).unwrap();
            assert!(q.bid < q.ask && q.bid <= q.last && q.last < q.ask, "{q:?}");
            assert!(q.bid >= inst.tick_size);
            assert!(inst.on_tick_grid(q.bid) && inst.on_tick_grid(q.ask));
            let lot = Decimal::from(inst.lot_size);
            assert!((q.bid_size % lot).is_zero() && (q.ask_size % lot).is_zero());
            assert!(q.bid_size >= lot && q.ask_size >= lot);
            if i > 0 {
                assert_eq!(Some(q), b.quote(&inst.symbol, 9));
            }
        }
        assert!(a.quote("NOPE!", 0).is_none());
    }

    #[test]
    fn walk_stays_on_grid_and_positive() {
        let mut m = Market::generate(1, 200);
        for _ in 0..500 {
            m.step();
        }
        for i in &m.instruments {
            assert!(i.price >= i.tick_size && i.on_tick_grid(i.price));
        }
    }
}
