//! Severity: how many users are hurt × how much of the service is hurt → SEV1..SEV4.
//!
//! It exists because severity picked by hand in the heat of an incident is picked by mood.
//! Here it is read off a matrix from two scopes that can be measured or stated plainly:
//!
//! - **User scope**: `none`, `internal`, `some`, `most`, `all`. Measured from the share of
//!   requests failing on the affected routes ([`user_scope_from_counts`]) or set by hand
//!   (`internal` can only be set by hand: the gateway cannot tell staff from customers).
//! - **Function scope**: `auxiliary`, `core`, `whole`. Routes say `function = "core"` in the
//!   config (absent: auxiliary); an incident's function scope is the widest of its affected
//!   routes, and `whole` when every known route is affected ([`function_scope`]).
//!
//! Measured user scope, by the share of requests failing on the affected routes:
//!
//! | share failing        | user scope | why |
//! |----------------------|------------|-----|
//! | no requests, < 0.1 % | `none`     | background errors every service has; not an outage |
//! | 0.1 % .. < 50 %      | `some`     | a visible minority: retries and luck hide it from most |
//! | 50 % .. < 95 %       | `most`     | more users fail than succeed |
//! | ≥ 95 %               | `all`      | what gets through is luck or cache |
//!
//! The default matrix (rows: user scope; columns: function scope):
//!
//! ```text
//!              auxiliary  core   whole
//!   none       SEV4       SEV4   SEV4
//!   internal   SEV4       SEV3   SEV3
//!   some       SEV3       SEV2   SEV2
//!   most       SEV3       SEV2   SEV1
//!   all        SEV2       SEV1   SEV1
//! ```
//!
//! Why: nobody hurt is at most SEV4 whatever broke (worth a record, not a page at night).
//! Staff-only damage is SEV3 at worst. An auxiliary function (a report, an avatar) never goes
//! above SEV2, and only when everyone sees it. A core function failing for a minority is
//! SEV2: someone is losing money or data now. SEV1 is the whole service failing for most
//! users, or a core function failing for everyone. A config `matrix` overrides single cells;
//! a matrix where widening a scope makes the severity milder is refused.

pub use ballast_core::incident::{FunctionScope, Scope, Sev, UserScope, UserScopeSource};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// Below this share of failing requests, users are not counted as affected (0.1 %).
pub const SOME_SHARE: f64 = 0.001;
/// From this share, most users are affected.
pub const MOST_SHARE: f64 = 0.5;
/// From this share, all users are affected.
pub const ALL_SHARE: f64 = 0.95;

/// The user scope measured from `failed` of `total` requests on the affected routes (see the
/// module docs for the thresholds). No requests at all measures as `none`: silence is not
/// evidence of harm (an incident whose traffic vanished sets its scope by hand).
pub fn user_scope_from_counts(failed: u64, total: u64) -> UserScope {
    if total == 0 {
        return UserScope::None;
    }
    let share = failed.min(total) as f64 / total as f64;
    if share >= ALL_SHARE {
        UserScope::All
    } else if share >= MOST_SHARE {
        UserScope::Most
    } else if share >= SOME_SHARE {
        UserScope::Some
    } else {
        UserScope::None
    }
}

/// The function scope of the `affected` routes, given each known route's scope (`function`
/// in the config; routes missing from `routes` count as auxiliary). `whole` when every known
/// route is affected, else the widest scope among the affected; `auxiliary` when none is.
pub fn function_scope(
    routes: &BTreeMap<String, FunctionScope>,
    affected: &BTreeSet<String>,
) -> FunctionScope {
    if !routes.is_empty() && routes.keys().all(|r| affected.contains(r)) {
        return FunctionScope::Whole;
    }
    affected
        .iter()
        .map(|r| routes.get(r).copied().unwrap_or(FunctionScope::Auxiliary))
        .max()
        .unwrap_or(FunctionScope::Auxiliary)
}

/// A scope measured from `failed` of `total` requests on the `affected` routes, given each
/// known route's function scope.
pub fn measured_scope(
    failed: u64,
    total: u64,
    routes: &BTreeMap<String, FunctionScope>,
    affected: BTreeSet<String>,
) -> Scope {
    {
        Scope {
            user: user_scope_from_counts(failed, total),
            user_source: UserScopeSource::Measured { failed, total },
            function: function_scope(routes, &affected),
            routes: affected,
        }
    }
}

/// Cells to override in the default matrix, as written in the config:
/// `matrix = { some = { core = "SEV1" } }`.
pub type MatrixSpec = BTreeMap<UserScope, BTreeMap<FunctionScope, Sev>>;

/// Why a matrix was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MatrixError {
    #[error("matrix.{user}.{function} is {got} but a narrower scope next to it is already {worse}; widening a scope must not make an incident milder")]
    NotMonotonic {
        user: &'static str,
        function: &'static str,
        got: Sev,
        worse: Sev,
    },
}

/// The severity of every user scope × function scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matrix {
    cells: [[Sev; 3]; 5],
}

impl Default for Matrix {
    fn default() -> Self {
        use Sev::*;
        Matrix {
            cells: [
                [Sev4, Sev4, Sev4],
                [Sev4, Sev3, Sev3],
                [Sev3, Sev2, Sev2],
                [Sev3, Sev2, Sev1],
                [Sev2, Sev1, Sev1],
            ],
        }
    }
}

impl Matrix {
    /// The default matrix with `spec`'s cells replaced, refused if the result is not
    /// monotonic (a wider scope, same other scope, must be at least as severe).
    pub fn with_overrides(spec: &MatrixSpec) -> Result<Self, MatrixError> {
        let mut m = Matrix::default();
        for (user, row) in spec {
            for (function, sev) in row {
                m.cells[*user as usize][*function as usize] = *sev;
            }
        }
        m.check()?;
        Ok(m)
    }

    /// The severity of one cell.
    pub fn severity(&self, user: UserScope, function: FunctionScope) -> Sev {
        self.cells[user as usize][function as usize]
    }

    /// The severity of a scope.
    pub fn grade(&self, scope: &Scope) -> Sev {
        self.severity(scope.user, scope.function)
    }

    /// The whole matrix as a spec (for showing the running config).
    pub fn to_spec(&self) -> MatrixSpec {
        UserScope::ALL
            .into_iter()
            .map(|u| {
                let row = FunctionScope::ALL
                    .into_iter()
                    .map(|f| (f, self.severity(u, f)))
                    .collect();
                (u, row)
            })
            .collect()
    }

    fn check(&self) -> Result<(), MatrixError> {
        for u in UserScope::ALL {
            for f in FunctionScope::ALL {
                let got = self.severity(u, f);
                let (ui, fi) = (u as usize, f as usize);
                let left = (fi > 0).then(|| self.cells[ui][fi - 1]);
                let up = (ui > 0).then(|| self.cells[ui - 1][fi]);
                // A narrower neighbour that is worse (smaller Sev) than this cell.
                if let Some(worse) = [left, up].into_iter().flatten().find(|n| *n < got) {
                    return Err(MatrixError::NotMonotonic {
                        user: u.name(),
                        function: f.name(),
                        got,
                        worse,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_scope_thresholds() {
        assert_eq!(user_scope_from_counts(0, 0), UserScope::None);
        assert_eq!(user_scope_from_counts(0, 1000), UserScope::None);
        assert_eq!(user_scope_from_counts(1, 10_000), UserScope::None);
        assert_eq!(user_scope_from_counts(1, 1000), UserScope::Some);
        assert_eq!(user_scope_from_counts(499, 1000), UserScope::Some);
        assert_eq!(user_scope_from_counts(500, 1000), UserScope::Most);
        assert_eq!(user_scope_from_counts(949, 1000), UserScope::Most);
        assert_eq!(user_scope_from_counts(950, 1000), UserScope::All);
        // More failures than requests (counters read at different moments) is all, not a panic.
        assert_eq!(user_scope_from_counts(5, 3), UserScope::All);
    }

    #[test]
    fn function_scope_is_the_widest_affected_or_whole() {
        let routes: BTreeMap<String, FunctionScope> = [
            ("checkout".to_string(), FunctionScope::Core),
            ("avatars".to_string(), FunctionScope::Auxiliary),
            ("search".to_string(), FunctionScope::Auxiliary),
        ]
        .into();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(function_scope(&routes, &set(&[])), FunctionScope::Auxiliary);
        assert_eq!(
            function_scope(&routes, &set(&["avatars"])),
            FunctionScope::Auxiliary
        );
        assert_eq!(
            function_scope(&routes, &set(&["avatars", "checkout"])),
            FunctionScope::Core
        );
        assert_eq!(
            function_scope(&routes, &set(&["avatars", "checkout", "search"])),
            FunctionScope::Whole
        );
        // An unknown route counts as auxiliary.
        assert_eq!(
            function_scope(&routes, &set(&["other"])),
            FunctionScope::Auxiliary
        );
    }

    #[test]
    fn default_matrix_corners_and_reasoned_cells() {
        let m = Matrix::default();
        assert_eq!(m.severity(UserScope::None, FunctionScope::Whole), Sev::Sev4);
        assert_eq!(m.severity(UserScope::All, FunctionScope::Core), Sev::Sev1);
        assert_eq!(m.severity(UserScope::Most, FunctionScope::Whole), Sev::Sev1);
        assert_eq!(m.severity(UserScope::Some, FunctionScope::Core), Sev::Sev2);
        assert_eq!(
            m.severity(UserScope::All, FunctionScope::Auxiliary),
            Sev::Sev2
        );
        assert_eq!(
            m.severity(UserScope::Internal, FunctionScope::Whole),
            Sev::Sev3
        );
        assert!(m.check().is_ok());
    }

    #[test]
    fn measured_scope_grades_through_the_matrix() {
        let routes: BTreeMap<String, FunctionScope> = [
            ("checkout".to_string(), FunctionScope::Core),
            ("faq".to_string(), FunctionScope::Auxiliary),
        ]
        .into();
        let scope = measured_scope(300, 1000, &routes, ["checkout".to_string()].into());
        assert_eq!(scope.user, UserScope::Some);
        assert_eq!(scope.function, FunctionScope::Core);
        assert_eq!(Matrix::default().grade(&scope), Sev::Sev2);
    }

    #[test]
    fn overrides_replace_cells_and_stay_monotonic() {
        let spec: MatrixSpec =
            [(UserScope::Some, [(FunctionScope::Core, Sev::Sev1)].into())].into();
        // some×core = SEV1 but some×whole (wider) stays SEV2: refused.
        let err = Matrix::with_overrides(&spec).unwrap_err();
        assert!(
            err.to_string().starts_with("matrix.some.whole is SEV2"),
            "{err}"
        );

        let spec: MatrixSpec = [
            (
                UserScope::Some,
                [
                    (FunctionScope::Core, Sev::Sev1),
                    (FunctionScope::Whole, Sev::Sev1),
                ]
                .into(),
            ),
            (UserScope::Most, [(FunctionScope::Core, Sev::Sev1)].into()),
        ]
        .into();
        let m = Matrix::with_overrides(&spec).unwrap();
        assert_eq!(m.severity(UserScope::Some, FunctionScope::Core), Sev::Sev1);
        assert_eq!(m.severity(UserScope::None, FunctionScope::Core), Sev::Sev4);
        assert_eq!(
            m.to_spec()[&UserScope::Most][&FunctionScope::Core],
            Sev::Sev1
        );
    }

    #[test]
    fn serde_names() {
        let spec: MatrixSpec = toml::from_str("[some]\ncore = \"SEV1\"\n").unwrap();
        assert_eq!(spec[&UserScope::Some][&FunctionScope::Core], Sev::Sev1);
        assert!(toml::from_str::<MatrixSpec>("[many]\ncore = \"SEV1\"\n").is_err());
        assert!(toml::from_str::<MatrixSpec>("[some]\ncore = \"SEV5\"\n").is_err());
        assert_eq!(serde_json::to_string(&Sev::Sev3).unwrap(), "\"SEV3\"");
    }
}
