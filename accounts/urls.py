"""Signing in to the portal (password or wallet) and out of it."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.sign_in, name="sign-in"),
    path("login/wallet/challenge", views.wallet_challenge, name="sign-in-wallet-challenge"),
    path("login/wallet/verify", views.wallet_verify, name="sign-in-wallet-verify"),
    path("logout/", views.sign_out, name="sign-out"),
]
