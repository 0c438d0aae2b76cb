//! The CKA family (Kornblith et al. 2019): Gram matrices ([`gram`], flex's faer product in
//! [`host_gram`]), their centring ([`centering`]), the HSIC estimators ([`hsic`]), linear CKA
//! ([`linear_cka`]), CKA of any Grams and RBF CKA ([`kernel_cka`]), and minibatch CKA (Nguyen
//! et al. 2021, [`minibatch`]).

pub mod centering;
pub mod gram;
pub mod host_gram;
pub mod hsic;
pub mod kernel_cka;
pub mod linear_cka;
pub mod minibatch;
