//! Care that ends (issue 26, item 1; SPEC 3.5): episodes planned ahead, ended by a plan, a
//! close or by themselves after a period without activity (deposits and attendances, never
//! reads), and a provider's review of its open episodes. Under both consent regimes.

use ehrshare_core::clock::Clock;
use ehrshare_testkit::{TestResponse, page_get, page_post};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::world::{SEED, World, both_regimes, condition, world_with};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// The world, with passwords that do not age: these tests skip months.
async fn world() -> World {
    world_with(ehrshare_app::Settings {
        auth: ehrshare_app::settings::AuthSettings {
            password_max_age: Duration::ZERO,
            ..Default::default()
        },
        ..ehrshare_app::Settings::default()
    })
    .await
}

impl World {
    fn now(&self) -> OffsetDateTime {
        self.t.clock.now()
    }

    async fn open(&self, body: Value) -> TestResponse {
        self.post(
            &self.clerk,
            &format!("/api/v1/recipients/{}/episodes", self.recipient),
            body,
        )
        .await
    }

    /// The doctor logs in again at `at` (sessions do not outlive the months these tests
    /// skip): logging in takes one 30-second step of the clock.
    async fn doctor_at(&self, at: OffsetDateTime) -> ehrshare_testkit::Agent {
        self.t.clock.set(at - Duration::seconds(30));
        let doctor = self.t.login_agent("dr.a", SEED, None).await;
        assert_eq!(self.now(), at);
        doctor
    }
}

async fn an_appointment_opens_access_a_week_ahead_and_an_idle_episode_ends_by_itself() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    let start = w.now() + Duration::days(14);
    let r = w
        .open(json!({"kind": "appointment", "start": rfc3339(start)}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["start"], rfc3339(start));
    assert_eq!(r.json()["planned_end"], Value::Null);

    // Booked for two weeks ahead: nothing yet, until seven days before it.
    let doctor = w
        .doctor_at(start - Duration::days(7) - Duration::seconds(1))
        .await;
    let r = w.summary(&doctor).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "no-care-relationship");
    w.t.clock.set(start - Duration::days(7));
    assert_eq!(w.summary(&doctor).await.status, 200);

    // Nobody closes it and nothing is deposited: it ends 90 days after its start (reads are
    // not activity), and the follow-up window 30 days after that, to the second.
    let end = start + Duration::days(90) + Duration::days(30);
    let doctor = w.doctor_at(end - Duration::days(1)).await;
    assert_eq!(w.summary(&doctor).await.status, 200);
    let doctor = w.doctor_at(end).await;
    assert_eq!(w.summary(&doctor).await.status, 200);
    w.t.clock.set(end + Duration::seconds(1));
    let r = w.summary(&doctor).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "no-care-relationship");
    let e = w.last_entry().await;
    assert_eq!(
        e.entry.denial_reason.as_deref(),
        Some("no-care-relationship")
    );
}

both_regimes!(an_appointment_opens_access_a_week_ahead_and_an_idle_episode_ends_by_itself);

async fn deposits_and_attendances_keep_an_episode_going_and_the_review_lists_it() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    let opened = w.now();
    let r = w.open(json!({"kind": "attendance"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let episode = r.json()["id"].as_str().unwrap().to_owned();
    // Not the user administrator's to review (they see no patients).
    assert_eq!(w.get(&w.ua, "/api/v1/episodes").await.status, 404);

    // A deposit on day 60 is activity: the episode now runs to day 150.
    let day60 = opened + Duration::days(60);
    let doctor = w.doctor_at(day60).await;
    let r = w
        .post(
            &doctor,
            &format!("/api/v1/recipients/{}/records", w.recipient),
            condition("dx-60"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        w.last_entry().await.entry.episode_id.map(|e| e.to_string()),
        Some(episode.clone())
    );
    let doctor = w.doctor_at(day60 + Duration::days(120)).await;
    assert_eq!(
        w.summary(&doctor).await.status,
        200,
        "day 180, within 150 + 30"
    );

    // The review: the clerk's provider's open episodes, with when each ends by itself.
    let clerk = w.t.login_agent("clerk.a", SEED, None).await;
    let r = w.get(&clerk, "/api/v1/episodes").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().unwrap().len(), 0, "ended on day 150");
    // An attendance on an episode that has ended is refused: open a new one.
    let attend = format!(
        "/api/v1/recipients/{}/episodes/{episode}/attendance",
        w.recipient
    );
    let r = w.post(&clerk, &attend, Value::Null).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "episode-ended");

    // A new episode, kept going by an attendance on its day 80.
    let r = w
        .post(
            &clerk,
            &format!("/api/v1/recipients/{}/episodes", w.recipient),
            json!({"kind": "admission"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let second = r.json()["id"].as_str().unwrap().to_owned();
    let started = w.now();
    w.t.clock.set(started + Duration::days(80));
    let clerk = w.t.login_agent("clerk.a", SEED, None).await;
    let attended = w.now();
    let r = w
        .post(
            &clerk,
            &format!(
                "/api/v1/recipients/{}/episodes/{second}/attendance",
                w.recipient
            ),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["last_activity"], rfc3339(attended));
    let r = w.get(&clerk, "/api/v1/episodes").await;
    let listed = r.json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], second.as_str());
    assert_eq!(listed[0]["recipient"], w.recipient.as_str());
    assert_eq!(listed[0]["name_en"], "CHAN Tai Man");
    assert_eq!(listed[0]["ends_by"], "inactivity");
    assert_eq!(listed[0]["ends_at"], rfc3339(attended + Duration::days(90)));
    assert_eq!(w.last_entry().await.entry.action, "episode.review");
    // Nor another provider's episodes.
    let other = w.t.login_agent("dr.b", SEED, None).await;
    let r = w.get(&other, "/api/v1/episodes").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().unwrap().len(), 0);
    let r = w
        .post(
            &other,
            &format!(
                "/api/v1/recipients/{}/episodes/{second}/attendance",
                w.recipient
            ),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404, "another provider's episode: {}", r.text());

    // Reads are not activity: on day 80 + 90 + 30 the episode's window has closed.
    let doctor = w.doctor_at(attended + Duration::days(120)).await;
    assert_eq!(w.summary(&doctor).await.status, 200);
    w.t.clock
        .set(attended + Duration::days(120) + Duration::seconds(1));
    assert_eq!(
        w.summary(&doctor).await.json()["code"],
        "no-care-relationship"
    );
}

both_regimes!(deposits_and_attendances_keep_an_episode_going_and_the_review_lists_it);

async fn a_planned_end_ends_the_episode_and_bad_times_are_refused_by_name() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    let now = w.now();
    let before = w.audit_count().await;
    for (body, field, code) in [
        (
            json!({"kind": "appointment", "start": rfc3339(now + Duration::days(367))}),
            "/start",
            "episode-start-too-far-ahead",
        ),
        (
            json!({"kind": "attendance", "start": rfc3339(now - Duration::days(31))}),
            "/start",
            "episode-start-too-long-ago",
        ),
        (
            json!({"kind": "admission", "start": rfc3339(now + Duration::days(3)),
                   "planned_end": rfc3339(now + Duration::days(2))}),
            "/planned_end",
            "episode-end-not-after-start",
        ),
    ] {
        let r = w.open(body).await;
        assert_eq!(r.status, 422, "{}", r.text());
        assert_eq!(r.json()["code"], code);
        assert_eq!(r.json()["errors"][0]["field"], field);
    }
    for body in [
        json!({"kind": "admission", "start": "next tuesday"}),
        json!({"kind": "admission", "until": rfc3339(now)}),
    ] {
        let r = w.open(body).await;
        assert!(r.status == 400 || r.status == 422, "{}", r.text());
    }
    assert_eq!(
        w.audit_count().await,
        before,
        "nothing was stored or decided"
    );

    // An admission planned for three days: access to three days plus the follow-up window.
    let end = now + Duration::days(3);
    let r = w
        .open(json!({"kind": "admission", "planned_end": rfc3339(end)}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["planned_end"], rfc3339(end));
    let clerk = w.t.login_agent("clerk.a", SEED, None).await;
    let listed = w.get(&clerk, "/api/v1/episodes").await.json();
    assert_eq!(listed[0]["ends_by"], "plan");
    assert_eq!(listed[0]["ends_at"], rfc3339(end));
    let doctor = w.doctor_at(end + Duration::days(30)).await;
    assert_eq!(w.summary(&doctor).await.status, 200);
    w.t.clock
        .set(end + Duration::days(30) + Duration::seconds(1));
    assert_eq!(
        w.summary(&doctor).await.json()["code"],
        "no-care-relationship"
    );
}

both_regimes!(a_planned_end_ends_the_episode_and_bad_times_are_refused_by_name);

async fn the_portal_books_an_episode_ahead_in_hong_kong_time() {
    let w = world().await;
    let page =
        w.t.send(page_get(
            &w.clerk,
            &format!("/hcp/patients/{}", w.recipient),
        ))
        .await
        .text();
    assert!(
        page.contains("name=\"start\" type=\"datetime-local\""),
        "{page}"
    );
    assert!(page.contains("name=\"planned_end\" type=\"datetime-local\""));
    // 2 p.m. in Hong Kong ten days ahead is 6 a.m. UTC.
    let day = (w.now() + Duration::days(10)).to_offset(ehrshare_core::clock::HONG_KONG);
    let local = format!(
        "{:04}-{:02}-{:02}T14:00",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    let r =
        w.t.send(page_post(
            &w.clerk,
            &format!("/hcp/patients/{}/episode", w.recipient),
            &format!("kind=appointment&start={local}&planned_end="),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let clerk = w.clerk.clone();
    let listed = w.get(&clerk, "/api/v1/episodes").await.json();
    let start = OffsetDateTime::parse(listed[0]["start"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(start.to_offset(ehrshare_core::clock::HONG_KONG).hour(), 14);
    assert_eq!(start.to_offset(time::UtcOffset::UTC).hour(), 6);
    // A time that is not one is a form message, in the page's language, and nothing stored.
    let r =
        w.t.send(page_post(
            &w.clerk,
            &format!("/hcp/patients/{}/episode?lang=zh-HK", w.recipient),
            "kind=appointment&start=tomorrow",
        ))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        w.get(&clerk, "/api/v1/episodes")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

both_regimes!(the_portal_books_an_episode_ahead_in_hong_kong_time);

async fn a_deposit_in_the_follow_up_window_does_not_revive_an_ended_episode() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    let opened = w.now();
    let r = w.open(json!({"kind": "attendance"})).await;
    let episode = r.json()["id"].as_str().unwrap().to_owned();
    // Day 100: ended by itself on day 90, still in its follow-up window. A deposit there is
    // allowed (the window covers it) but is no activity in the episode.
    let doctor = w.doctor_at(opened + Duration::days(100)).await;
    let r = w
        .post(
            &doctor,
            &format!("/api/v1/recipients/{}/records", w.recipient),
            condition("dx-100"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // Closing it now would restart the follow-up window: refused, audited.
    let r = w
        .post(
            &doctor,
            &format!(
                "/api/v1/recipients/{}/episodes/{episode}/close",
                w.recipient
            ),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "episode-ended");
    let e = w.last_entry().await;
    assert_eq!(e.entry.action, "episode.close");
    assert_eq!(e.entry.denial_reason.as_deref(), Some("episode-ended"));
    // Day 120 is the window's last; day 120 and a second is outside it.
    let doctor = w.doctor_at(opened + Duration::days(120)).await;
    assert_eq!(w.summary(&doctor).await.status, 200);
    w.t.clock
        .set(opened + Duration::days(120) + Duration::seconds(1));
    assert_eq!(
        w.summary(&doctor).await.json()["code"],
        "no-care-relationship"
    );
}

both_regimes!(a_deposit_in_the_follow_up_window_does_not_revive_an_ended_episode);
