//! Who talks to whom: clients in direct pairs and in groups, plus one room
//! that cuts across both. Pure arithmetic, decided before anything runs.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Direct,
    Group,
    Room,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Direct, Kind::Group, Kind::Room];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Group => "group",
            Kind::Room => "room",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedConversation {
    pub kind: Kind,
    /// Client indexes; the first one creates the conversation.
    pub members: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub conversations: Vec<PlannedConversation>,
    /// Per client: the index of its direct or group conversation.
    pub home: Vec<usize>,
    /// The index of the room, if there is one.
    pub room: Option<usize>,
}

impl Topology {
    /// `direct_share` of the clients (rounded down to pairs) in direct pairs,
    /// the rest in groups of `group_size`; a remainder too small to be a
    /// group of three joins the last group (or, with no group, the last pair).
    /// Room members are spread evenly over all clients, so the room mixes
    /// people from pairs and groups.
    pub fn plan(clients: usize, direct_share: f64, group_size: usize, room_size: usize) -> Topology {
        let mut direct = ((clients as f64 * direct_share) as usize / 2) * 2;
        if clients - direct < 3 && clients - direct > 0 && direct >= 2 {
            // Too few left for a group: they go with the pairs.
            direct = clients;
        }
        let mut conversations = Vec::new();
        let mut home = vec![0; clients];
        let mut pairs: Vec<Vec<usize>> = (0..direct)
            .collect::<Vec<_>>()
            .chunks(2)
            .map(<[usize]>::to_vec)
            .collect();
        if let Some(odd) = pairs.last().filter(|pair| pair.len() == 1).map(|pair| pair[0]) {
            pairs.pop();
            match pairs.last_mut() {
                Some(last) => last.push(odd),
                None => pairs.push(vec![odd]),
            }
        }
        for members in pairs {
            let kind = if members.len() == 2 { Kind::Direct } else { Kind::Group };
            conversations.push(PlannedConversation { kind, members });
        }
        let rest: Vec<usize> = (direct..clients).collect();
        let mut groups: Vec<Vec<usize>> = rest.chunks(group_size).map(<[usize]>::to_vec).collect();
        if groups.len() > 1 && groups.last().is_some_and(|g| g.len() < 3) {
            let tail = groups.pop().unwrap_or_default();
            if let Some(last) = groups.last_mut() {
                last.extend(tail);
            }
        }
        for members in groups {
            conversations.push(PlannedConversation {
                kind: Kind::Group,
                members,
            });
        }
        for (index, conversation) in conversations.iter().enumerate() {
            for &member in &conversation.members {
                home[member] = index;
            }
        }
        let room = (room_size > 0).then(|| {
            let members = (0..room_size).map(|k| k * clients / room_size).collect();
            conversations.push(PlannedConversation {
                kind: Kind::Room,
                members,
            });
            conversations.len() - 1
        });
        Topology {
            conversations,
            home,
            room,
        }
    }

    /// The conversations `client` is in: its home, then the room if a member.
    pub fn conversations_of(&self, client: usize) -> Vec<usize> {
        let mut found = vec![self.home[client]];
        if let Some(room) = self.room {
            if self.conversations[room].members.contains(&client) {
                found.push(room);
            }
        }
        found
    }

    /// Per conversation, how many members to add who never connect, so that
    /// they are about `share` of its members: none in a direct conversation
    /// (two members, both sending), else the connected members × share /
    /// (1 − share), to the nearest whole user.
    pub fn offline_counts(&self, share: f64) -> Vec<usize> {
        self.conversations
            .iter()
            .map(|c| match c.kind {
                Kind::Direct => 0,
                Kind::Group | Kind::Room => (c.members.len() as f64 * share / (1.0 - share)).round() as usize,
            })
            .collect()
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.conversations.iter().filter(|c| c.kind == kind).count()
    }

    /// Clients whose home is a conversation of this kind.
    pub fn clients_in(&self, kind: Kind) -> usize {
        self.conversations
            .iter()
            .filter(|c| c.kind == kind && kind != Kind::Room)
            .map(|c| c.members.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_load_is_pairs_groups_of_six_and_a_room_of_one_hundred() {
        let t = Topology::plan(200, 0.5, 6, 100);
        assert_eq!(t.count(Kind::Direct), 50);
        // 100 clients: 16 groups of 6 and one of 4.
        assert_eq!(t.count(Kind::Group), 17);
        assert_eq!(t.clients_in(Kind::Group), 100);
        let room = &t.conversations[t.room.unwrap()];
        assert_eq!(room.members.len(), 100);
        // Half of the room comes from pairs, half from groups.
        assert_eq!(room.members.iter().filter(|&&m| m < 100).count(), 50);
        for client in 0..200 {
            assert!(t.conversations[t.home[client]].members.contains(&client));
        }
        assert_eq!(t.conversations_of(0).len(), 2);
        assert_eq!(t.conversations_of(1), vec![t.home[1]]);
    }

    #[test]
    fn every_client_has_a_home_with_at_least_one_other_member() {
        for clients in 2..40 {
            for share in [0.0, 0.3, 0.5, 1.0] {
                for group_size in [3, 6] {
                    let t = Topology::plan(clients, share, group_size, 0);
                    for client in 0..clients {
                        let home = &t.conversations[t.home[client]];
                        assert!(home.members.contains(&client), "{clients} {share} {group_size}");
                        assert!(home.members.len() >= 2, "{clients} {share} {group_size}: {home:?}");
                    }
                    let covered: usize = t.conversations.iter().map(|c| c.members.len()).sum();
                    assert_eq!(covered, clients);
                }
            }
        }
    }

    #[test]
    fn offline_members_are_the_share_asked_for_in_groups_and_rooms_only() {
        let t = Topology::plan(60, 0.5, 6, 30);
        assert!(t.offline_counts(0.0).iter().all(|&n| n == 0));
        let counts = t.offline_counts(0.3);
        for (planned, &offline) in t.conversations.iter().zip(&counts) {
            match planned.kind {
                Kind::Direct => assert_eq!(offline, 0),
                Kind::Group | Kind::Room => {
                    let share = offline as f64 / (offline + planned.members.len()) as f64;
                    // Whole users: within half a user of the share.
                    assert!((share - 0.3).abs() <= 0.5 / (offline + planned.members.len()) as f64 + 1e-9);
                    assert!(offline > 0);
                }
            }
        }
        // 6 connected → 3 offline (a third); the room of 30 → 13.
        assert_eq!(counts[t.home[59]], 3);
        assert_eq!(counts[t.room.unwrap()], 13);
    }

    #[test]
    fn only_direct_when_asked() {
        let t = Topology::plan(10, 1.0, 6, 0);
        assert_eq!(t.count(Kind::Direct), 5);
        assert_eq!(t.count(Kind::Group), 0);
        assert!(t.room.is_none());
    }
}
