"""A simulated centrifugal ductile-iron pipe plant that publishes over MQTT."""
