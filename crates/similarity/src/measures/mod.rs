//! The measures, by family: [`cka`] (linear, RBF, debiased and minibatch CKA and their
//! building blocks), [`cca`] (CCA, SVCCA, PWCCA, Procrustes) on the [`covariance`] statistics,
//! [`neighbours`] (mutual kNN, CKNNA), [`rsa`] and [`shape_metric`]. [`crate::measure`]
//! computes any of them by its [`crate::Measure`].

pub mod cca;
pub mod cka;
pub mod covariance;
pub mod neighbours;
pub mod rsa;
pub mod shape_metric;
