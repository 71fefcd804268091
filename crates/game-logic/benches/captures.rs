//! Captures per second on one core: the rules' hot path as the server drives
//! it. Each game seats 8 players (the 8th join auto-starts it), then the
//! players take turns capturing all 81 cells in a scrambled order, and every
//! event is drained with `poll_event` after each command, as a game task
//! would before broadcasting. Game set-up and the final `GameOver` are part
//! of the timed work, so the figure is end to end per captured cell.
//!
//! Run: `cargo bench -p gridcap-game-logic --bench captures`
//! (prefix with `taskset -c 1` to pin it to one core).

use std::hint::black_box;
use std::time::{Duration, Instant};

use game_logic::{
    CELL_COUNT, Cell, Event, Game, GameError, PlayerId, PlayerName, Settings, SettingsBounds,
    Timestamp,
};

/// Games per timed round: ~4 million captures, a few hundred ms.
const GAMES_PER_ROUND: usize = 50_000;
/// Timed rounds; the median is the headline figure.
const ROUNDS: usize = 11;

/// The cells in a scrambled but fixed order: `i * 38 mod 81` visits every
/// cell once because 38 and 81 are coprime.
fn cell_order() -> Result<[Cell; CELL_COUNT], GameError> {
    let mut cells = [Cell::try_from(0u8)?; CELL_COUNT];
    for (i, slot) in cells.iter_mut().enumerate() {
        let index = u8::try_from(i * 38 % CELL_COUNT).map_err(|_| GameError::OutOfRange)?;
        *slot = Cell::try_from(index)?;
    }
    Ok(cells)
}

fn drain(game: &mut Game) -> usize {
    let mut n = 0;
    while let Some(event) = game.poll_event() {
        black_box(&event);
        n += 1;
    }
    n
}

/// Plays one full game and returns the captures it made.
fn play(
    settings: Settings,
    names: &[PlayerName],
    seats: &[PlayerId],
    cells: &[Cell; CELL_COUNT],
    now: Timestamp,
) -> Result<u64, GameError> {
    let mut game = Game::new(settings, names[0].clone(), now);
    for name in &names[1..] {
        game.join(name.clone(), now)?;
        game.handle_timeout(now); // the 8th join's start
        drain(&mut game);
    }
    let mut captures = 0;
    for (i, &cell) in cells.iter().enumerate() {
        let player = seats[i % seats.len()];
        game.capture(black_box(player), black_box(cell), black_box(now))?;
        drain(&mut game);
        captures += 1;
    }
    black_box(&game);
    Ok(captures)
}

fn round(
    settings: Settings,
    names: &[PlayerName],
    seats: &[PlayerId],
    cells: &[Cell; CELL_COUNT],
    games: usize,
) -> Result<(u64, Duration), GameError> {
    let now = Timestamp::from_unix_ms(1_700_000_000_000);
    let started = Instant::now();
    let mut captures = 0;
    for _ in 0..games {
        captures += play(settings, names, seats, cells, now)?;
    }
    Ok((captures, started.elapsed()))
}

fn main() -> Result<(), GameError> {
    let settings = Settings::new(Some(8), Some(30_000), &SettingsBounds::default())?;
    let names = (0..8)
        .map(|i| PlayerName::new(&format!("player {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let seats = PlayerId::all().collect::<Vec<_>>();
    let cells = cell_order()?;

    // Sanity: a game really fills the board and ends on it.
    let mut game = Game::new(settings, names[0].clone(), Timestamp::default());
    for name in &names[1..] {
        game.join(name.clone(), Timestamp::default())?;
        game.handle_timeout(Timestamp::default());
    }
    for (i, &cell) in cells.iter().enumerate() {
        game.capture(seats[i % 8], cell, Timestamp::default())?;
    }
    let over = std::iter::from_fn(|| game.poll_event()).last();
    if !matches!(over, Some(Event::GameOver { .. })) {
        return Err(GameError::NotActive);
    }

    round(settings, &names, &seats, &cells, GAMES_PER_ROUND / 5)?; // warm-up
    let mut rates = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let (captures, elapsed) = round(settings, &names, &seats, &cells, GAMES_PER_ROUND)?;
        rates.push(captures as f64 / elapsed.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let m = |r: f64| r / 1e6;
    println!(
        "captures/s on one core ({ROUNDS} rounds of {GAMES_PER_ROUND} games x 81 captures, 8 players): \
         median {:.1} M, min {:.1} M, max {:.1} M",
        m(rates[ROUNDS / 2]),
        m(rates[0]),
        m(rates[ROUNDS - 1]),
    );
    println!(
        "target >= 20 M/s: {}",
        if rates[ROUNDS / 2] >= 20e6 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
